"""Host-memory allocation for DMA buffers inside the device's window."""
from .errors import WindowError

__all__ = ["Allocator"]


class Allocator:
    """First-fit allocator of the byte range ``[base, base + size)``.

    Blocks are aligned to ``align`` bytes (a multiple of the bus width, so every buffer
    starts on a beat). :meth:`alloc` raises :class:`WindowError` when a request does not fit,
    with the sizes involved, before anything is written.
    """

    def __init__(self, base, size, align=64):
        if size <= 0:
            raise ValueError(f"size must be positive, not {size}")
        if align < 1 or align & (align - 1):
            raise ValueError(f"align must be a power of two, not {align}")
        self.base, self.size, self.align = base, size, align
        self._blocks = {}          # addr -> length

    def _round(self, value):
        return (value + self.align - 1) // self.align * self.align

    @property
    def used(self):
        return sum(self._blocks.values())

    def alloc(self, length, what="buffer"):
        """Address of a new block of ``length`` bytes (rounded up to the alignment)."""
        length = self._round(max(1, length))
        at = self._round(self.base)
        for start in sorted(self._blocks):
            if start - at >= length:
                break
            at = max(at, self._round(start + self._blocks[start]))
        if at + length > self.base + self.size:
            raise WindowError(f"{what} needs {length} bytes but the device's DMA window "
                              f"({self.size} bytes at {self.base:#x}) has only "
                              f"{self.size - self.used} free: split the job (smaller M or "
                              f"batch) or give the backend more memory")
        self._blocks[at] = length
        return at

    def free(self, addr):
        """Release the block at ``addr``."""
        if addr not in self._blocks:
            raise ValueError(f"no block allocated at {addr:#x}")
        del self._blocks[addr]

    def reset(self):
        """Release every block."""
        self._blocks.clear()
