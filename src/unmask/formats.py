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
}
# Weight files unmask refuses: unpickling runs arbitrary code.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
