# placeholder, replaced by the ring buffer implementation
def _placeholder() -> int:
    return 0
