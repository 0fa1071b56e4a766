# An I2C bus stand-in (machine.I2C's readfrom_mem / writeto_mem / scan) with simulated devices,
# and a DS3231 register model for the reader's RTC driver. A device that is absent answers as
# on a real bus: OSError (ENODEV/EIO).


class SimI2C:
    def __init__(self):
        self.devices = {}

    def add(self, addr, device):
        self.devices[addr] = device

    def scan(self):
        return sorted(self.devices)

    def _dev(self, addr):
        d = self.devices.get(addr)
        if d is None:
            raise OSError(19)  # ENODEV
        return d

    def readfrom_mem(self, addr, reg, n):
        return self._dev(addr).read(reg, n)

    def writeto_mem(self, addr, reg, data):
        self._dev(addr).write(reg, bytes(data))


class DS3231Model:
    """Register file of a DS3231 (0x00–0x12). A new chip, or one whose battery ran flat, has the
    oscillator-stop flag (OSF, 0x0F bit 7) set until the time is written and the flag cleared."""

    def __init__(self, osf=True):
        self.regs = bytearray(0x13)
        self.regs[0x0F] = 0x80 if osf else 0x00

    def read(self, reg, n):
        return bytes(self.regs[(reg + i) % len(self.regs)] for i in range(n))

    def write(self, reg, data):
        for i, b in enumerate(data):
            self.regs[(reg + i) % len(self.regs)] = b

    def battery_flat(self):
        self.regs[0x0F] |= 0x80
