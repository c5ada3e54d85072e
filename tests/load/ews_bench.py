"""EWS load client for tests/load/ews.sh (a benchmark helper, never run in CI).

Owns the client side of the EWS benchmark: a minimal HTTP/1.1 keep-alive client
over verified TLS (Basic auth) that counts every byte it sends and reads, a
minimal IMAP client that does the same, and the five workloads ews.sh times:

  count          prints the Inbox's total (FindItem IdOnly), for waiting on a fill
  throughput     FindItem pages / GetItem batches / SyncFolderItems from several
                 client processes: ops/s, p50, p99 per operation
  bytes          the same messages listed (twice: cold, warm) and fetched over EWS and
                 over IMAP on one connection each: wire bytes and message bytes/s,
                 EWS/IMAP ratios
  subscriptions  COUNT streaming subscriptions (Subscribe + GetStreamingEvents held
                 open, one connection each) until SIGTERM or --hold seconds, then
                 until no event came for 2 s; prints the NewMailEvents they saw
  latency        one streaming subscription; N messages over SMTP, one at a time:
                 time from the 250 after DATA to the NewMailEvent on the stream

Standard library only (exchangelib, when importable, supplies its Message field
list for one GetItem variant). Every result line is `key=value ...` for the shell.
"""

import argparse
import asyncio
import base64
import multiprocessing as mp
import re
import signal
import smtplib
import socket
import ssl
import sys
import threading
import time

NS = (
    'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" '
    'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"'
)
INBOX = '<t:DistinguishedFolderId Id="inbox"/>'
ITEM_ID = re.compile(rb'<t:ItemId Id="([^"]+)"')
MIME = re.compile(rb"<t:MimeContent[^>]*>([^<]*)</t:MimeContent>")
ENVELOPE_END = re.compile(rb"</\w+:Envelope>")
NEW_MAIL = re.compile(rb"<\w+:NewMailEvent>")
# Whatever else a response says, these mean it did not do what was asked.
FAILED = (b'ResponseClass="Error"', b"<s:Fault>", b"Fault>")


# ---------------------------------------------------------------- requests (pure)


def envelope(body):
    """A SOAP request as exchangelib writes one (Exchange2016)."""
    return (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope {NS}><soap:Header>'
        f'<t:RequestServerVersion Version="Exchange2016"/></soap:Header>'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def find_item(offset, page, base="Default"):
    return envelope(
        f'<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>{base}</t:BaseShape>'
        f'</m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="{page}" Offset="{offset}" '
        f'BasePoint="Beginning"/><m:ParentFolderIds>{INBOX}</m:ParentFolderIds></m:FindItem>'
    )


def get_item(ids, base="Default", mime=False, fields=()):
    shape = f"<t:BaseShape>{base}</t:BaseShape>"
    if mime:
        shape += "<t:IncludeMimeContent>true</t:IncludeMimeContent>"
    if fields:
        shape += "<t:AdditionalProperties>" + "".join(fields) + "</t:AdditionalProperties>"
    items = "".join(f'<t:ItemId Id="{i}"/>' for i in ids)
    return envelope(f"<m:GetItem><m:ItemShape>{shape}</m:ItemShape><m:ItemIds>{items}</m:ItemIds></m:GetItem>")


def sync_folder_items(state, max_changes=512):
    st = f"<m:SyncState>{state}</m:SyncState>" if state else ""
    return envelope(
        "<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
        f"<m:SyncFolderId>{INBOX}</m:SyncFolderId>{st}"
        f"<m:MaxChangesReturned>{max_changes}</m:MaxChangesReturned></m:SyncFolderItems>"
    )


def subscribe():
    return envelope(
        f"<m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds>{INBOX}</t:FolderIds>"
        "<t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes>"
        "</m:StreamingSubscriptionRequest></m:Subscribe>"
    )


def get_streaming_events(sub_id, minutes):
    return envelope(
        f"<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>{sub_id}</t:SubscriptionId>"
        f"</m:SubscriptionIds><m:ConnectionTimeout>{minutes}</m:ConnectionTimeout></m:GetStreamingEvents>"
    )


def exchangelib_fields():
    """exchangelib's Message fields for Exchange 2016 (what `account.fetch()` asks
    for), as FieldURI elements, MimeContent left out; [] without exchangelib."""
    try:
        from exchangelib import Message
        from exchangelib.fields import FieldPath
        from exchangelib.util import xml_to_str
        from exchangelib.version import EXCHANGE_2016, Version
    except ImportError:
        return []
    v = Version(build=EXCHANGE_2016)
    out = []
    for f in Message.FIELDS:
        if not f.supports_version(v) or f.name == "mime_content":
            continue
        for fp in FieldPath(field=f).expand(version=v):
            x = xml_to_str(fp.to_xml())
            out.append(re.sub(r' xmlns:t="[^"]*"', "", x))
    return out


def percentile(values, p):
    """Nearest-rank percentile of `values` (0 for none)."""
    if not values:
        return 0.0
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def check(body, what):
    if any(f in body for f in FAILED) or b'ResponseClass="Success"' not in body:
        raise RuntimeError(f"{what} failed: {body[:600]!r}")


# ---------------------------------------------------------------- HTTP client


def tls_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = True
    return ctx


class Http:
    """One keep-alive HTTPS connection to /EWS/Exchange.asmx; `sent`/`got` count
    the bytes of every request and response (TLS payload: headers, chunk framing
    and bodies)."""

    def __init__(self, port, ca, user, password):
        self.port, self.ca = port, ca
        self.auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.sent = self.got = 0
        self.sock = self.f = None

    def connect(self):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=120)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = tls_context(self.ca).wrap_socket(raw, server_hostname="localhost")
        self.f = self.sock.makefile("rb")

    def close(self):
        for c in (self.f, self.sock):
            if c:
                c.close()
        self.sock = self.f = None

    def send(self, body):
        if self.sock is None:
            self.connect()
        head = (
            "POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Basic {self.auth}\r\nContent-Type: text/xml; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.sock.sendall(head + body)
        self.sent += len(head) + len(body)

    def line(self):
        ln = self.f.readline(65536)
        if not ln:
            raise ConnectionError("connection closed by the server")
        self.got += len(ln)
        return ln

    def head(self):
        status = self.line()
        code = int(status.split()[1])
        headers = {}
        while True:
            ln = self.line()
            if ln in (b"\r\n", b"\n"):
                return code, headers
            k, _, v = ln.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()

    def chunk(self):
        """The next chunk of a chunked body (b"" at its end)."""
        size = int(self.line().split(b";")[0], 16)
        data = self.f.read(size) if size else b""
        self.got += len(data)
        self.line()  # CRLF after the data (or after the last-chunk)
        return data

    def post(self, body):
        """POSTs a SOAP request, returns the whole response body (HTTP 200 only)."""
        self.send(body)
        code, headers = self.head()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while c := self.chunk():
                parts.append(c)
            data = b"".join(parts)
        else:
            n = int(headers.get("content-length", "0"))
            data = self.f.read(n)
            self.got += len(data)
        if headers.get("connection", "").lower() == "close":
            self.close()
        if code != 200:
            raise RuntimeError(f"HTTP {code}: {data[:300]!r}")
        return data


# ---------------------------------------------------------------- IMAP client


class Imap:
    """A minimal IMAPS client counting bytes both ways; `literals` collects the
    sizes of the literals of the last command's responses."""

    def __init__(self, port, ca):
        raw = socket.create_connection(("127.0.0.1", port), timeout=120)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = tls_context(ca).wrap_socket(raw, server_hostname="localhost")
        self.f = self.sock.makefile("rb")
        self.sent = self.got = 0
        self.n = 0
        self.literals = []
        self.line()  # greeting

    def line(self):
        ln = self.f.readline(1 << 20)
        if not ln:
            raise ConnectionError("IMAP connection closed")
        self.got += len(ln)
        return ln

    def cmd(self, text):
        self.n += 1
        tag = f"a{self.n}".encode()
        data = tag + b" " + text.encode() + b"\r\n"
        self.sock.sendall(data)
        self.sent += len(data)
        self.literals = []
        while True:
            ln = self.line()
            m = re.search(rb"\{(\d+)\}\r\n$", ln)
            if m:
                n = int(m.group(1))
                lit = self.f.read(n)
                self.got += len(lit)
                self.literals.append(len(lit))
                continue
            if ln.startswith(tag + b" "):
                if not ln.startswith(tag + b" OK"):
                    raise RuntimeError(f"IMAP {text.split()[0]} failed: {ln!r}")
                return

    def close(self):
        try:
            self.cmd("LOGOUT")
        except (OSError, ConnectionError, RuntimeError):
            pass
        self.sock.close()


# ---------------------------------------------------------------- workloads


def all_ids(http, total):
    """Every Inbox item id, newest first, by FindItem IdOnly pages of 1,000."""
    ids = []
    while len(ids) < total:
        body = http.post(find_item(len(ids), 1000, "IdOnly"))
        check(body, "FindItem IdOnly")
        got = [m.decode() for m in ITEM_ID.findall(body)]
        if not got:
            break
        ids.extend(got)
    return ids


def cmd_count(a):
    http = Http(a.port, a.ca, a.user, a.password)
    body = http.post(find_item(0, 1, "IdOnly"))
    check(body, "FindItem")
    m = re.search(rb'TotalItemsInView="(\d+)"', body)
    print(m.group(1).decode() if m else 0)


def worker(args):
    """One client process: its share of the requests on one keep-alive connection,
    started together with the others at `start_at` (time.time())."""
    port, ca, user, password, requests, start_at = args
    http = Http(port, ca, user, password)
    http.connect()
    http.post(find_item(0, 1, "IdOnly"))  # TLS, login and the first page behind us
    http.sent = http.got = 0
    time.sleep(max(0.0, start_at - time.time()))
    lat = []
    for what, body in requests:
        t0 = time.perf_counter()
        resp = http.post(body)
        lat.append(time.perf_counter() - t0)
        check(resp, what)
    end = time.time()
    http.close()
    return lat, end, http.sent + http.got


def timed(pool, a, name, requests, clients, items_per_op):
    """Runs `requests` round-robin over `clients` processes; prints one line."""
    shares = [requests[i::clients] for i in range(clients)]
    start_at = time.time() + 1.5
    jobs = [(a.port, a.ca, a.user, a.password, [(name, r) for r in s], start_at) for s in shares if s]
    results = pool.map(worker, jobs)
    lat = [x for r in results for x in r[0]]
    wall = max(r[1] for r in results) - start_at
    wire = sum(r[2] for r in results)
    print(
        f"op={name} clients={len(jobs)} ops={len(lat)} secs={wall:.2f} ops_s={len(lat) / wall:.1f} "
        f"items_s={len(lat) * items_per_op / wall:.0f} p50_ms={percentile(lat, 50) * 1000:.1f} "
        f"p99_ms={percentile(lat, 99) * 1000:.1f} wire_kib={wire / 1024:.0f}",
        flush=True,
    )


def cmd_throughput(a):
    http = Http(a.port, a.ca, a.user, a.password)
    ids = all_ids(http, a.messages)
    http.close()
    if len(ids) < a.messages:
        sys.exit(f"the Inbox holds {len(ids)} messages, expected {a.messages}")
    pages = [find_item(o, 100) for o in range(0, len(ids), 100)] * a.rounds
    batches = [ids[i : i + a.batch] for i in range(0, len(ids), a.batch)]
    fields = exchangelib_fields()
    with mp.get_context("fork").Pool(a.clients) as pool:
        timed(pool, a, "FindItem(Default,100)", pages, a.clients, 100)
        timed(pool, a, f"GetItem(Default,{a.batch})", [get_item(b) for b in batches] * a.rounds, a.clients, a.batch)
        if fields:
            reqs = [get_item(b, "IdOnly", fields=fields) for b in batches] * a.rounds
            timed(pool, a, f"GetItem(exchangelib-{len(fields)}-fields,{a.batch})", reqs, a.clients, a.batch)
        reqs = [get_item(b, mime=True) for b in batches] * a.rounds
        timed(pool, a, f"GetItem(Default+MimeContent,{a.batch})", reqs, a.clients, a.batch)
    # SyncFolderItems of the whole folder from an empty state: one client, a chain.
    http = Http(a.port, a.ca, a.user, a.password)
    lat, items, state = [], 0, ""
    t0 = time.perf_counter()
    for _ in range(10_000):
        s = time.perf_counter()
        body = http.post(sync_folder_items(state))
        lat.append(time.perf_counter() - s)
        check(body, "SyncFolderItems")
        items += body.count(b"<t:Create>")
        state = re.search(rb"<m:SyncState>([^<]*)</m:SyncState>", body).group(1).decode()
        if b"<m:IncludesLastItemInRange>true" in body:
            break
    wall = time.perf_counter() - t0
    print(
        f"op=SyncFolderItems(IdOnly,512) clients=1 ops={len(lat)} secs={wall:.2f} ops_s={len(lat) / wall:.1f} "
        f"items_s={items / wall:.0f} p50_ms={percentile(lat, 50) * 1000:.1f} "
        f"p99_ms={percentile(lat, 99) * 1000:.1f} wire_kib={(http.sent + http.got) / 1024:.0f} items={items}",
        flush=True,
    )
    if items != len(ids):
        sys.exit(f"SyncFolderItems reported {items} creates for {len(ids)} messages")


def cmd_bytes(a):
    """List and fetch the whole Inbox over EWS, then over IMAP, one connection each."""
    http = Http(a.port, a.ca, a.user, a.password)
    ids = all_ids(http, a.messages)
    ews_list = []
    for _ in range(2):  # cold, then warm
        http.sent = http.got = 0
        t0 = time.perf_counter()
        for o in range(0, len(ids), 100):
            check(http.post(find_item(o, 100)), "FindItem")
        ews_list.append((http.sent + http.got, time.perf_counter() - t0))
    http.sent = http.got = 0
    ews_msg = 0
    t0 = time.perf_counter()
    for i in range(0, len(ids), a.batch):
        body = http.post(get_item(ids[i : i + a.batch], "IdOnly", mime=True))
        check(body, "GetItem MimeContent")
        ews_msg += sum(len(base64.b64decode(m)) for m in MIME.findall(body))
    ews_fetch = (http.sent + http.got, time.perf_counter() - t0)
    http.close()

    imap = Imap(a.imap_port, a.ca)
    imap.cmd(f'LOGIN "{a.user}" "{a.password}"')
    imap.cmd("SELECT INBOX")
    imap_list = []
    for _ in range(2):  # cold (the daemon caches what ENVELOPE needs), then warm
        imap.sent = imap.got = 0
        t0 = time.perf_counter()
        imap.cmd("UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)")
        imap_list.append((imap.sent + imap.got, time.perf_counter() - t0))
    imap.sent = imap.got = 0
    imap_msg = 0
    t0 = time.perf_counter()
    for lo in range(1, len(ids) + 1, a.batch):
        imap.cmd(f"FETCH {lo}:{min(lo + a.batch - 1, len(ids))} (UID BODY.PEEK[])")
        imap_msg += sum(imap.literals)
    imap_fetch = (imap.sent + imap.got, time.perf_counter() - t0)
    imap.close()

    n = len(ids)
    (ews_b, ews_cold), (_, ews_warm) = ews_list
    (imap_b, imap_cold), (_, imap_warm) = imap_list
    print(f"list messages={n} ews_bytes={ews_b} ews_secs={ews_warm:.2f} ews_cold_secs={ews_cold:.2f} "
          f"imap_bytes={imap_b} imap_secs={imap_warm:.2f} imap_cold_secs={imap_cold:.2f} "
          f"bytes_ratio={ews_b / imap_b:.2f}")
    ews_rate, imap_rate = ews_msg / ews_fetch[1], imap_msg / imap_fetch[1]
    print(f"fetch messages={n} message_bytes={ews_msg} imap_message_bytes={imap_msg} "
          f"ews_bytes={ews_fetch[0]} ews_secs={ews_fetch[1]:.2f} imap_bytes={imap_fetch[0]} "
          f"imap_secs={imap_fetch[1]:.2f} bytes_ratio={ews_fetch[0] / imap_fetch[0]:.2f} "
          f"ews_mib_s={ews_rate / 2**20:.1f} imap_mib_s={imap_rate / 2**20:.1f} "
          f"rate_ratio={ews_rate / imap_rate:.2f}", flush=True)
    if ews_msg != imap_msg:
        sys.exit(f"EWS MimeContent held {ews_msg} bytes, IMAP BODY[] {imap_msg}")


async def stream_one(a, ctx, opened, stop, counts, sem):
    """Subscribe and GetStreamingEvents on one connection; counts NewMailEvents
    until `stop` is set."""
    auth = base64.b64encode(f"{a.user}:{a.password}".encode()).decode()

    def request(body):
        return (
            "POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Basic {auth}\r\nContent-Type: text/xml; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async with sem:
        r, w = await asyncio.open_connection("127.0.0.1", a.port, ssl=ctx, server_hostname="localhost")
        w.write(request(subscribe()))
        head = await r.readuntil(b"\r\n\r\n")
        n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        body = await r.readexactly(n)
        check(body, "Subscribe")
        sub = re.search(rb"<m:SubscriptionId>([^<]+)<", body).group(1).decode()
        w.write(request(get_streaming_events(sub, a.minutes)))
        head = await r.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n")[0] or b"chunked" not in head.lower():
            raise RuntimeError(f"GetStreamingEvents: {head!r}")
        buf = b""
        first = True
    reader = asyncio.ensure_future(read_stream(r, buf, first, opened, counts))
    await stop.wait()
    reader.cancel()
    w.close()


async def read_stream(r, buf, first, opened, counts):
    while True:
        size = int((await r.readline()).split(b";")[0], 16)
        if size == 0:
            return
        buf += await r.readexactly(size)
        await r.readline()
        while (m := ENVELOPE_END.search(buf)) is not None:
            env, buf = buf[: m.end()], buf[m.end() :]
            if first:
                check(env, "GetStreamingEvents")
                first = False
                opened.append(1)
            n = len(NEW_MAIL.findall(env))
            if n:
                counts[0] += n
                counts[1] = time.perf_counter()


async def subscriptions(a):
    ctx = tls_context(a.ca)
    stop, stopping = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stopping.set)
    opened, counts, sem = [], [0, 0.0], asyncio.Semaphore(32)
    t0 = time.perf_counter()
    tasks = [asyncio.ensure_future(stream_one(a, ctx, opened, stop, counts, sem)) for _ in range(a.count)]
    deadline = time.perf_counter() + a.hold
    while len(opened) < a.count and time.perf_counter() < deadline and not stopping.is_set():
        failed = [t for t in tasks if t.done() and t.exception()]
        if failed:
            print(f"error={failed[0].exception()!r}", flush=True)
            stopping.set()
            break
        await asyncio.sleep(0.05)
    print(f"streams={len(opened)} secs={time.perf_counter() - t0:.1f}", flush=True)
    try:
        await asyncio.wait_for(stopping.wait(), timeout=max(0.0, deadline - time.perf_counter()))
    except asyncio.TimeoutError:
        pass
    # Events still on their way (a delivery fans out to every stream) arrive
    # before the streams close: until none came for 2 s, at most 12 s (stop_pid
    # in ews.sh sends SIGKILL after 15).
    drain_end = time.perf_counter() + 12
    while time.perf_counter() < drain_end and time.perf_counter() - counts[1] < 2:
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(f"closed streams={len(opened)} new_mail_events={counts[0]}", flush=True)


def cmd_subscriptions(a):
    asyncio.run(subscriptions(a))


def cmd_latency(a):
    http = Http(a.port, a.ca, a.user, a.password)
    body = http.post(subscribe())
    check(body, "Subscribe")
    sub = re.search(rb"<m:SubscriptionId>([^<]+)<", body).group(1).decode()
    http.send(get_streaming_events(sub, 5))
    code, headers = http.head()
    if code != 200 or headers.get("transfer-encoding", "").lower() != "chunked":
        sys.exit(f"GetStreamingEvents: HTTP {code} {headers}")
    arrivals, cv = [], threading.Condition()
    first = threading.Event()

    def read():
        buf = b""
        try:
            while c := http.chunk():
                now = time.perf_counter()
                buf += c
                while (m := ENVELOPE_END.search(buf)) is not None:
                    env, buf = buf[: m.end()], buf[m.end() :]
                    first.set()
                    with cv:
                        arrivals.extend([now] * len(NEW_MAIL.findall(env)))
                        cv.notify_all()
        except (OSError, ValueError, ConnectionError):
            pass

    threading.Thread(target=read, daemon=True).start()
    if not first.wait(10):
        sys.exit("no first envelope on the stream within 10 s")
    lat, early, missing = [], 0, 0
    msg = "From: <probe@remote.test>\r\nTo: <{to}>\r\nSubject: latency {i}\r\n\r\nprobe {i}\r\n"
    with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=30) as smtp:
        smtp.ehlo("load.test")
        for i in range(a.messages):
            smtp.sendmail("probe@remote.test", [a.user], msg.format(to=a.user, i=i))
            t250 = time.perf_counter()
            with cv:
                if not cv.wait_for(lambda: len(arrivals) > i, timeout=5):
                    missing += 1
                    break
                d = arrivals[i] - t250
            if d < 0:
                early += 1
            lat.append(max(0.0, d))
            time.sleep(a.gap / 1000)
    # The reader thread is blocked in a read holding the file's lock: end the
    # connection under it rather than wait for a heartbeat.
    http.sock.shutdown(socket.SHUT_RDWR)
    print(
        f"latency messages={len(lat)} p50_ms={percentile(lat, 50) * 1000:.1f} "
        f"p99_ms={percentile(lat, 99) * 1000:.1f} max_ms={max(lat, default=0) * 1000:.1f} "
        f"before_250={early} missing={missing}",
        flush=True,
    )
    if missing:
        sys.exit("an event did not arrive within 5 s")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["count", "throughput", "bytes", "subscriptions", "latency"])
    p.add_argument("--port", type=int, required=True, help="the https listener")
    p.add_argument("--imap-port", type=int)
    p.add_argument("--smtp-port", type=int)
    p.add_argument("--ca", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--hold", type=float, default=300, help="seconds the subscriptions stay at most")
    p.add_argument("--minutes", type=int, default=10, help="the streams' ConnectionTimeout")
    p.add_argument("--gap", type=float, default=20, help="ms between latency probes")
    a = p.parse_args()
    {
        "count": cmd_count,
        "throughput": cmd_throughput,
        "bytes": cmd_bytes,
        "subscriptions": cmd_subscriptions,
        "latency": cmd_latency,
    }[a.command](a)


if __name__ == "__main__":
    main()
