"""`torch.cuda`, as far as a program that runs on the CPU asks it: CUDA is not available."""


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0
