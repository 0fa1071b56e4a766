# Drives firmware/lib/mqtt.py under the MicroPython unix port against a real broker, one
# scenario per run:  micropython tests/mpy/mqtt_probe.py '{"scenario": ..., ...}'
# Prints JSON lines; the pytest side (tests/firmware/test_mqtt_client.py) plays the gateway with paho.
import asyncio
import json
import ssl
import sys

import mqtt
from ticks import elapsed_ms, ticks_ms

cfg = json.loads(sys.argv[1])
me = cfg["user"]


def say(**kw):
    print(json.dumps(kw))


def tls_context(ca_path):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    with open(ca_path, "rb") as f:
        ctx.load_verify_locations(cadata=f.read())
    return ctx


async def connected(handler=None, will=None, password=None, ca=None, clean=True):
    c = mqtt.Client(me, user=me, password=password or cfg["password"],
                    keepalive=cfg.get("keepalive", 30), will=will, handler=handler, clean=clean)
    await c.connect("127.0.0.1", cfg["tls_port"], ssl=tls_context(ca or cfg["ca"]),
                    server_hostname="localhost")
    return c


async def publish_burst():
    c = await connected()
    n = cfg["count"]
    t0 = ticks_ms()
    pids = []
    for i in range(n):
        pids.append(await c.publish_start("cbcc/v1/r/%s/ev" % me, b"%06d" % i, qos=1))
        # wait in order as the window fills: the journal is acknowledged in order
        while len(pids) >= c.window:
            await c.wait_ack(pids.pop(0))
    for pid in pids:
        await c.wait_ack(pid)
    say(sent=n, ms=elapsed_ms(t0))
    await c.disconnect()


async def wrong_topic():
    c = await connected()
    await c.publish("cbcc/v1/r/someone-else/ev", b"forged", qos=1)
    await c.publish("cbcc/v1/r/%s/ev" % me, b"marker", qos=1)
    say(done=True)
    await c.disconnect()


async def refused():
    try:
        await connected(password=cfg.get("bad_password"), ca=cfg.get("bad_ca"))
        say(error=None)
    except mqtt.MQTTError as e:
        say(error=str(e))


async def subscribe():
    got = []

    def on_msg(topic, payload, retained):
        got.append([topic, payload.decode(), retained])

    c = await connected(handler=on_msg)
    await c.subscribe("cbcc/v1/r/%s/cmd" % me, 1)
    await c.subscribe("cbcc/v1/all/#", 1)
    say(subscribed=True)
    t0 = ticks_ms()
    while c.connected and len(got) < cfg["expect"] and elapsed_ms(t0) < 15000:
        await asyncio.sleep_ms(20)
    first_error = None if c.connected else repr(c.error)
    await c.disconnect()
    # After a broken connection a new one must work (what the uplink's reconnect relies on).
    c2 = await connected(handler=on_msg)
    await c2.subscribe("cbcc/v1/r/%s/cmd" % me, 1)
    say(received=got, first_error=first_error, reconnected=c2.connected)
    await c2.disconnect()


async def will():
    c = await connected(will=("cbcc/v1/r/%s/status" % me, b'{"online": false}', True, 1))
    await c.publish("cbcc/v1/r/%s/status" % me, b'{"online": true}', qos=1, retain=True)
    say(connected=True)
    while True:  # the test kills this process: the broker must publish the will
        await asyncio.sleep(1)


asyncio.run(globals()[cfg["scenario"]]())
