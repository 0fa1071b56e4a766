# Deterministic random source for the simulator: SHA-256 in counter mode over a seed, so that a
# given Rig(seed=...) produces the same nonces and random UIDs under CPython and MicroPython.
import hashlib
import os


class Rng:
    def __init__(self, seed=None):
        if seed is None:
            material = os.urandom(16)
        else:
            material = ("cbcc-sim-seed:%s" % (seed,)).encode()
        self._key = hashlib.sha256(material).digest()
        self._counter = 0
        self._pool = b""

    def bytes(self, n):
        out = b""
        while len(out) < n:
            if not self._pool:
                block = self._key + self._counter.to_bytes(8, "little")
                self._pool = hashlib.sha256(block).digest()
                self._counter += 1
            take = min(n - len(out), len(self._pool))
            out += self._pool[:take]
            self._pool = self._pool[take:]
        return out

    def below(self, n):
        """Uniform-enough integer in [0, n) for small n."""
        return int.from_bytes(self.bytes(4), "big") % n

    def fork(self, label):
        """An independent stream for one component (a card), still determined by the seed."""
        child = Rng(0)
        child._key = hashlib.sha256(self._key + label.encode()).digest()
        return child
