# ECDSA over NIST P-224 (secp224r1), signing only, in plain integer arithmetic (Jacobian
# coordinates): enough for the simulated DESFire card to produce an originality signature over
# its UID the way NXP's are made (raw r || s, 28 bytes each, the UID used as the message without
# hashing). The key pair is the simulator's own stand-in for NXP's; its public key is
# sim.cards.ORIGINALITY_PUBLIC_KEY.
import hashlib

P = 2 ** 224 - 2 ** 96 + 1
A = P - 3
B = 0xB4050A850C04B3ABF54132565044B0B7D7BFD8BA270B39432355FFB4
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFF16A2E0B8F03E13DD29455C5C2A3D
GX = 0xB70E0CBD6BB4BF7F321390B94A03C1D356C21122343280D6115C1D21
GY = 0xBD376388B5F723FB4C22DFE6CD4375A05A07476444D5819985007E34

PRIVATE_KEY = int.from_bytes(hashlib.sha256(
    b"cbcc simulator: stand-in for NXP's originality key").digest(), "big") % N


def _double(pt):
    x, y, z = pt
    if z == 0 or y == 0:
        return (0, 1, 0)
    delta = z * z % P
    gamma = y * y % P
    beta = x * gamma % P
    alpha = 3 * (x - delta) * (x + delta) % P
    x3 = (alpha * alpha - 8 * beta) % P
    z3 = ((y + z) * (y + z) - gamma - delta) % P
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % P
    return (x3, y3, z3)


def _add(p1, p2):
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    if z1 == 0:
        return p2
    if z2 == 0:
        return p1
    z1z1 = z1 * z1 % P
    z2z2 = z2 * z2 % P
    u1 = x1 * z2z2 % P
    u2 = x2 * z1z1 % P
    s1 = y1 * z2 * z2z2 % P
    s2 = y2 * z1 * z1z1 % P
    if u1 == u2:
        if s1 != s2:
            return (0, 1, 0)
        return _double(p1)
    h = (u2 - u1) % P
    r = (s2 - s1) % P
    hh = h * h % P
    hhh = h * hh % P
    v = u1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    y3 = (r * (v - x3) - s1 * hhh) % P
    z3 = z1 * z2 * h % P
    return (x3, y3, z3)


def _affine(pt):
    x, y, z = pt
    zi = pow(z, P - 2, P)
    zi2 = zi * zi % P
    return (x * zi2 % P, y * zi2 * zi % P)


def scalar_mult(k, point=None):
    if point is None:
        point = (GX, GY)
    base = (point[0], point[1], 1)
    acc = (0, 1, 0)
    nbits = 0
    while (k >> nbits) != 0:
        nbits += 1
    for i in range(nbits - 1, -1, -1):
        acc = _double(acc)
        if (k >> i) & 1:
            acc = _add(acc, base)
    return _affine(acc)


def public_key_hex(d=PRIVATE_KEY):
    x, y = scalar_mult(d)
    return "04" + ("%056x" % x) + ("%056x" % y)


def sign_uid(uid, d=PRIVATE_KEY):
    """Deterministic ECDSA signature r || s over the UID taken as the message integer."""
    e = int.from_bytes(bytes(uid), "big")
    counter = 0
    while True:
        seed = d.to_bytes(28, "big") + bytes(uid) + counter.to_bytes(4, "big")
        k = int.from_bytes(hashlib.sha256(seed).digest(), "big") % N
        counter += 1
        if k == 0:
            continue
        x, _ = scalar_mult(k)
        r = x % N
        if r == 0:
            continue
        s = pow(k, N - 2, N) * (e + r * d) % N
        if s == 0:
            continue
        return r.to_bytes(28, "big") + s.to_bytes(28, "big")
