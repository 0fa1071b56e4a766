# Runs door-policy scenarios through the reader's own code and prints one JSON object with every
# outcome, so that tests compare the MicroPython unix port with CPython step by step.
#   micropython tests/mpy/policy_tables.py SPEC.json
# SPEC = {"configs": {name: payload hex}, "scenarios": [{"name", "config", "steps": [...]}],
#         "bench": {"config": name, "taps": [[label, step], ...], "n": N} (optional)}
# A step is {"op": "tap", "door", "card", "tech", "anti_clone", "now"} | {"op": "lockdown", "on",
# "door"} | {"op": "emergency", "on"} | {"op": "mode", "door", "now"} | {"op": "reload"}.
import binascii
import json
import sys
import time

import cbor
import policy
import reader_config

CARD_DEFAULTS = {"serial": 1001, "staff": "CB-00001001", "name": "Nguyễn Văn An",
                 "agency": "000.00.31.H26", "unit": "Văn phòng", "position": "", "title": "Chuyên viên"}
_KEYS = {"serial": 2, "staff": 3, "name": 4, "agency": 5, "unit": 6, "position": 7, "title": 8, "groups": 13}


def claims_of(card):
    if card is None:
        return None
    if "raw" in card:
        return card["raw"]  # deliberately odd claims
    c = {1: 1, 9: 1735689600, 10: 2051222400, 11: b"\x04\xa1\xb2\xc3\xd4\xe5\xf6", 12: 1}
    for k in CARD_DEFAULTS:
        c[_KEYS[k]] = card.get(k, CARD_DEFAULTS[k])
    if "groups" in card:
        c[13] = card["groups"]
    return c


def load_config(hexpayload):
    return reader_config.from_payload(cbor.decode(binascii.unhexlify(hexpayload)))


def _door(cfg, did):
    if did is None:
        return None
    return cfg.door(did)


def _tap(cfg, state, s):
    d = policy.decide(claims_of(s.get("card")), s.get("tech", "desfire"), s.get("anti_clone", True),
                      _door(cfg, s.get("door")), s.get("now"), state)
    return [d.granted, d.reason, d.detail, d.unlock, d.journal, d.mode]


def run_scenario(cfg, steps):
    state = policy.State(cfg.apb_capacity)
    out = []
    for s in steps:
        op = s["op"]
        if op == "tap":
            out.append(_tap(cfg, state, s))
        elif op == "lockdown":
            d = s.get("door")
            state.set_lockdown(s["on"], None if d is None else cfg.door(d).index)
            out.append(None)
        elif op == "emergency":
            state.set_emergency(s["on"])
            out.append(None)
        elif op == "mode":
            out.append(list(policy.door_mode(cfg.door(s["door"]), s.get("now"), state)))
        elif op == "reload":
            # Power cut: the state survives through its flash form only (re-tap memory does not).
            blob = state.dump()
            state = policy.State(cfg.apb_capacity)
            out.append(state.load(blob))
        else:
            raise ValueError(op)
    return out


def _clock():
    if hasattr(time, "ticks_us"):
        return time.ticks_us
    return lambda: int(time.perf_counter() * 1000000)


def bench(cfg, spec):
    now_us = _clock()
    n = spec["n"]
    res = {}
    for label, s in spec["taps"]:
        state = policy.State(cfg.apb_capacity)
        pre = spec.get("prefill")
        if pre:  # other cards fill the anti-passback table first
            for i in range(pre["n"]):
                card = {"serial": pre["serial"] + i, "agency": pre["agency"]}
                _tap(cfg, state, {"door": pre["door"], "card": card, "now": pre["now"] + i})
        door = cfg.door(s["door"])
        c = claims_of(s["card"])
        tech = s.get("tech", "desfire")
        ac = s.get("anti_clone", True)
        t = s["now"]
        step = s.get("step", 0)
        policy.decide(c, tech, ac, door, t, state)
        t0 = now_us()
        if t is None:
            for _ in range(n):
                policy.decide(c, tech, ac, door, None, state)
        else:
            for i in range(n):
                policy.decide(c, tech, ac, door, t + i * step, state)
        res[label] = (now_us() - t0) / n
    return res


def main(path):
    with open(path) as f:
        spec = json.load(f)
    configs = {}
    for name in spec["configs"]:
        configs[name] = load_config(spec["configs"][name])
    out = {"scenarios": {}}
    for sc in spec["scenarios"]:
        out["scenarios"][sc["name"]] = run_scenario(configs[sc["config"]], sc["steps"])
    b = spec.get("bench")
    if b:
        spec = None
        import gc
        gc.collect()
        out["bench_us"] = bench(configs[b["config"]], b)
        gc.collect()
        out["heap_free"] = gc.mem_free()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
