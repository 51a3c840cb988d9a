"""Facts about checkpoint names and files, shared by the loader and the on-disk descriptions.

Plain data with no imports, at the bottom of the layers, so both `loading` (torch) and
`checkpoints` (torch-free, for `unmask --help`) can read one copy.
"""

# Short names for published checkpoints, as `unmask pull NAME` takes them.
ALIASES = {
    "dream": "Dream-org/Dream-v0-Instruct-7B",
    "dream-base": "Dream-org/Dream-v0-Base-7B",
    "dream-coder": "Dream-org/Dream-Coder-v0-Instruct-7B",
    "diffucoder": "apple/DiffuCoder-7B-cpGRPO",
    "llada": "GSAI-ML/LLaDA-8B-Instruct",
    "llada-base": "GSAI-ML/LLaDA-8B-Base",
    "llada-1.5": "GSAI-ML/LLaDA-1.5",
    "mmada": "Gen-Verse/MMaDA-8B-MixCoT",
    "sdar": "JetLM/SDAR-1.7B-Chat",
    "sdar-4b": "JetLM/SDAR-4B-Chat",
    "sdar-8b": "JetLM/SDAR-8B-Chat",
    "sdar-30b": "JetLM/SDAR-30B-A3B-Chat",
    "llada2-mini": "inclusionAI/LLaDA2.0-mini",
    "llada2.1-mini": "inclusionAI/LLaDA2.1-mini",
    "llada2-flash": "inclusionAI/LLaDA2.0-flash",
    "llada2.1-flash": "inclusionAI/LLaDA2.1-flash",
    "fast-dllm-v2": "Efficient-Large-Model/Fast_dLLM_v2_7B",
    "llada-moe": "inclusionAI/LLaDA-MoE-7B-A1B-Instruct",
    "llada-moe-base": "inclusionAI/LLaDA-MoE-7B-A1B-Base",
    "diffusiongemma": "google/diffusiongemma-26B-A4B-it",
}
# Weight files unmask refuses: unpickling runs arbitrary code.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
