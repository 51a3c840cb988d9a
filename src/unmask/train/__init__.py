"""Masked-diffusion training: objective, data, loop and recipes. The engine never imports this."""
