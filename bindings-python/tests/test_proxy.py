"""The built-in proxy and the config renderers from Python, against real HTTP servers on loopback."""

import asyncio
import http.client
import http.server
import threading

import pytest

import dockfleet
from dockfleet import sync


def backend(name):
    """A real HTTP server (stdlib, its own thread) answering with its name; returns (port, server)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = f"{name} xff={self.headers.get('x-forwarded-for')}".encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1], server


def get(address, path="/"):
    host, port = address.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=5)
    c.request("GET", path)
    r = c.getresponse()
    out = (r.status, r.read().decode())
    c.close()
    return out


def test_proxy_balances_follows_discovery_and_counts():
    (pa, sa), (pb, sb) = backend("a"), backend("b")
    d = dockfleet.Discovery.embedded()

    async def main():
        await d.register(dockfleet.Instance(service="web", id="a", address="127.0.0.1", port=pa))
        proxy = await dockfleet.Proxy.start(d, dockfleet.ProxyOptions(routes=[dockfleet.Route(service="web")]))
        await proxy.wait_ready(5.0)
        loop = asyncio.get_running_loop()
        first = await loop.run_in_executor(None, get, proxy.address())
        assert first[0] == 200 and first[1].startswith("a xff=127.0.0.1")
        await d.register(dockfleet.Instance(service="web", id="b", address="127.0.0.1", port=pb))
        for _ in range(100):
            if len(proxy.stats()) == 2:
                break
            await asyncio.sleep(0.02)
        names = {(await loop.run_in_executor(None, get, proxy.address()))[1][0] for _ in range(6)}
        assert names == {"a", "b"}
        stats = {s.endpoint.id: s for s in proxy.stats()}
        assert stats["a"].requests >= 2 and stats["a"].errors == 0
        assert len(stats["a"].latency_counts) == len(dockfleet.LATENCY_BOUNDS_MS) + 1
        await proxy.shutdown(1.0)

    asyncio.run(main())
    sa.shutdown()
    sb.shutdown()


def test_sync_facade_and_bad_options():
    port, server = backend("s")
    d = sync.Discovery.embedded()
    d.register(dockfleet.Instance(service="web", id="s", address="127.0.0.1", port=port))
    proxy = sync.Proxy.start(d, dockfleet.ProxyOptions(routes=[dockfleet.Route(service="web")], protocol="tcp"))
    proxy.wait_ready(5.0)
    assert get(proxy.address())[1].startswith("s ")
    proxy.shutdown(1.0)
    with pytest.raises(dockfleet.InvalidArgumentError) as e:
        sync.Proxy.start(d, dockfleet.ProxyOptions(routes=[dockfleet.Route(service="web", path_prefix="api")]))
    assert e.value.code == "invalid_argument" and "routes[0].path_prefix" in str(e.value)
    with pytest.raises(dockfleet.InvalidAddressError):
        sync.Proxy.start(d, dockfleet.ProxyOptions(listen="nowhere", routes=[dockfleet.Route(service="web")]))
    server.shutdown()


def test_render_and_sync_config(tmp_path):
    instances = [dockfleet.Instance(service="web", id=f"w{i}", address="127.0.0.1", port=8000 + i) for i in range(2)]
    options = dockfleet.RenderOptions(kind="haproxy", routes=[dockfleet.Route(service="web")], listen="127.0.0.1:9999")
    text = dockfleet.render_config(options, instances)
    assert "server w1 127.0.0.1:8001 weight 1" in text
    assert "default_backend web_0" in text and "backend web_0\n    mode http" in text, text
    assert "backend {{ r.name }}" in dockfleet.default_template("haproxy", "http")
    with pytest.raises(dockfleet.InvalidArgumentError) as e:
        dockfleet.render_config(dockfleet.RenderOptions(kind="envoy", routes=[dockfleet.Route(service="web")]), instances)
    assert "kind" in str(e.value)
    # Nothing reaches the configuration that would change it beyond its values: a path prefix or an
    # address with a `;` or a line break would add directives.
    with pytest.raises(dockfleet.InvalidArgumentError, match=r"routes\[0\]\.path_prefix"):
        dockfleet.render_config(dockfleet.RenderOptions(routes=[dockfleet.Route(service="web", path_prefix="/a;\n}")]), instances)
    bad = dockfleet.Instance(service="web", id="w9", address="127.0.0.1;\n}", port=8009)
    with pytest.raises(dockfleet.InvalidArgumentError, match=r"instances\[2\]\.address"):
        dockfleet.render_config(options, [*instances, bad])
    # Kept in step with discovery: written once, then unchanged when nothing that matters changes.
    d = sync.Discovery.embedded()
    for i in instances:
        d.register(i)
    path = tmp_path / "web.cfg"
    stream = sync.sync_config(d, dockfleet.RenderOptions(kind="nginx", routes=[dockfleet.Route(service="web")], path=path, debounce=0.05))
    first = next(iter(stream))
    assert first.kind == "written" and first.servers == 2, first
    assert "server 127.0.0.1:8000" in path.read_text()
    d.register(dockfleet.Instance(service="web", id="w0", address="127.0.0.1", port=8000, tags=["x"]))
    assert next(iter(stream)).kind == "unchanged"
    stream.close()
