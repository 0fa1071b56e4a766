# A NOR-flash partition kept in a host file, for virtual readers whose journal must outlive the
# process (a test kills the reader and starts it again on the same "flash"). Same extended block
# protocol as esp32.Partition and sim.nor_flash.NorFlash: readblocks / writeblocks (program =
# AND, bits only go 1 -> 0) / ioctl (4 count, 5 size, 6 erase). Every operation reaches the OS
# before it returns, so killing the process loses nothing that was written.
import os


class FileFlash:
    def __init__(self, path, blocks=32, block_size=4096):
        self.path = path
        self.blocks = blocks
        self.block_size = block_size
        size = blocks * block_size
        try:
            st = os.stat(path)
            fresh = st[6] != size
        except OSError:
            fresh = True
        if fresh:
            with open(path, "wb") as f:
                blank = b"\xff" * block_size
                for _ in range(blocks):
                    f.write(blank)
        self._f = open(path, "r+b")

    def _addr(self, block, offset, n):
        a = block * self.block_size + offset
        if block < 0 or offset < 0 or a + n > self.blocks * self.block_size:
            raise OSError(22)  # EINVAL, as a real partition answers
        return a

    def readblocks(self, block, buf, offset=0):
        a = self._addr(block, offset, len(buf))
        self._f.seek(a)
        data = self._f.read(len(buf))
        buf[:len(data)] = data

    def writeblocks(self, block, buf, offset=0):
        n = len(buf)
        a = self._addr(block, offset, n)
        self._f.seek(a)
        old = self._f.read(n)
        new = bytes(x & y for x, y in zip(old, buf))  # NOR programming only clears bits
        self._f.seek(a)
        self._f.write(new)
        self._f.flush()

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.block_size
        if op == 6:
            a = self._addr(arg, 0, self.block_size)
            self._f.seek(a)
            self._f.write(b"\xff" * self.block_size)
            self._f.flush()
            return 0
        return None

    def close(self):
        self._f.close()
