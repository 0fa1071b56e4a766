# EV2 session keys of AuthenticateEV2First (the reader's own code, desfire_crypto.py):
#   micropython firmware/tools/desfire_session.py --key HEX --rnda HEX --rndb HEX
# prints {"enc": "HEX", "mac": "HEX"} (SesAuthENCKey = CMAC(K, SV1), SesAuthMACKey = CMAC(K, SV2))
# and exits 0; exit 2 on usage errors. All three values are 16 bytes.
import binascii

import toolkit  # first: puts the reader's modules on the path

# isort: split
import desfire_crypto
from toolkit import Usage

USAGE = "usage: desfire_session.py --key HEX --rnda HEX --rndb HEX"


def _hex16(opts, name):
    if not opts[name]:
        raise Usage("--" + name + " is required")
    try:
        v = binascii.unhexlify(opts[name])
    except Exception:
        raise Usage("--" + name + " is not hex")
    if len(v) != 16:
        raise Usage("--" + name + " must be 16 bytes")
    return v


def run(argv):
    _, opts = toolkit.parse(argv, {"key": "", "rnda": "", "rndb": ""}, 0)
    key = _hex16(opts, "key")
    enc, mac = desfire_crypto.ev2_session_keys(key, _hex16(opts, "rnda"), _hex16(opts, "rndb"))
    print('{"enc": "%s", "mac": "%s"}' % (binascii.hexlify(enc).decode().upper(),
                                          binascii.hexlify(mac).decode().upper()))
    return 0


def main():
    toolkit.run_main(run, USAGE)


if __name__ == "__main__":
    main()
