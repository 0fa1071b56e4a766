# AES-128 key diversification per NXP AN10922 (the reader's own code, desfire_crypto.py):
#   micropython firmware/tools/desfire_kdf.py --master HEX --uid HEX [--aid HEX] [--sysid HEX]
# prints the diversified key as one line of hex (upper case) and exits 0; exit 2 on usage errors.
# The diversification input is UID || AID || system identifier (1..31 bytes in total); for the
# CBCC layout AID is 564331 and the system identifier 434243435643 ("CBCCVC").
import binascii

import toolkit  # first: puts the reader's modules on the path

# isort: split
import desfire_crypto
from toolkit import Usage

USAGE = "usage: desfire_kdf.py --master HEX --uid HEX [--aid HEX] [--sysid HEX]"


def _hex(opts, name, required):
    text = opts[name]
    if not text:
        if required:
            raise Usage("--" + name + " is required")
        return b""
    try:
        return binascii.unhexlify(text)
    except Exception:
        raise Usage("--" + name + " is not hex")


def run(argv):
    _, opts = toolkit.parse(argv, {"master": "", "uid": "", "aid": "", "sysid": ""}, 0)
    master = _hex(opts, "master", True)
    m = _hex(opts, "uid", True) + _hex(opts, "aid", False) + _hex(opts, "sysid", False)
    if len(master) != 16:
        raise Usage("--master must be 16 bytes (AES-128)")
    if not 1 <= len(m) <= 31:
        raise Usage("UID || AID || system identifier must be 1..31 bytes")
    key = desfire_crypto.an10922_aes128(master, m)
    print(binascii.hexlify(key).decode().upper())
    return 0


def main():
    toolkit.run_main(run, USAGE)


if __name__ == "__main__":
    main()
