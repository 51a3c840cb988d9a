"""End-to-end tests of the studio in headless Chromium."""
