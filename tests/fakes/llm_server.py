#!/usr/bin/env python3
"""The model simulator: a loopback stand-in for Anthropic's and Ollama's HTTP APIs.

Used by the tests, `make demo` and `make bench`. Python 3 standard library only; it binds
127.0.0.1 and nothing else.

    tests/fakes/llm_server.py [--flavor ollama|anthropic] [--port 0] [--port-file F]
                              [--scenario S.json] [--version 0.32.15] [--vram-gb 24]
                              [--api-key KEY] [--tls-cert C --tls-key K]

Flavors
  ollama     /api/version /api/tags /api/show /api/ps /api/chat (NDJSON) /api/pull, and
             Ollama's own /v1/messages with its quirks (no ping, no signature, one
             input_json_delta, call_ ids, no bytes before the first token; 404 before 0.14.0)
  anthropic  /v1/messages as Anthropic serves it (SSE with ping, toolu_ ids, cache usage,
             request-id and rate-limit headers, API-key check when --api-key is given)

Replies come from a scenario (scripted conversations: text, thinking, tool calls, JSON
verdicts), or a default greeting; {"replay": "<fixture>"} sends a real captured payload from
tests/fixtures/protocol verbatim.

Control endpoints (not logged), JSON in and out:
  POST /_sim/faults     [{"match": {"path", "model", "host"}, "times": 1, "kind": ..., ...}]
                        kinds: status {status, retry_after, retry_after_ms, body, headers}
                               delay {seconds}        first byte only after that
                               stall {after, seconds} N frames, then silence
                               cut {after}            N frames, then the connection drops
                               malformed {at}         frame N is not valid JSON
                               content_type {content_type}
                               pace {seconds}         a pause before every frame but the first
                               close                  accept, then close without answering
                        hostile: status also takes raw_body (text sent as it is: escape sequences,
                                 NaN) and content_type
                               frames {frames, content_type}   a 200 stream of exactly these texts
                                                      (SSE for /v1/..., NDJSON otherwise)
                               comments {interval, seconds}    SSE comments (NDJSON: blank lines)
                                                      and nothing else, for `seconds` (120)
                               endless {bytes, seconds}        an answer that never ends: text in
                                                      pieces of `bytes` (4000), for `seconds` (120)
                               trickle {seconds}      the usual answer, one byte every `seconds` (1)
                               gzip                   the usual answer gzip-compressed
                                                      (Content-Encoding: gzip)
                               redirect {location, status}     a 302 (or status) to location
                                                      (default http://evil.test:1/), never served
  POST /_sim/refuse     {"seconds": s}  close the listener: connections are refused
  POST /_sim/scenario   a scenario document (see load_scenario); "reply_seconds": s makes
                        every model reply take s seconds (with its Ollama model held on the
                        simulated GPU), "load_seconds" and "vram_gb" set the GPU
  POST /_sim/models     {"models": [...], "vram_gb": n}
  POST /_sim/reset      forget faults, log, loaded models and conversation positions
  GET  /_sim/log        every request: method, path, host, port, headers, body, status; for
                        /api/chat also prompt_tokens and truncated_messages (Ollama drops the
                        oldest messages of a prompt longer than num_ctx, 4096 when unset)
  GET  /_sim/stats      {"requests": n, "loads": {model: n}, "evictions": n}
  POST /_sim/blackhole  {"port": p}: a port where connecting never completes
  POST /_sim/silent     {"port": p}: a port that accepts and never answers
  GET  /_sim/sleep?seconds=1            answers after a delay (concurrency benchmark)
  GET  /_sim/bench/sse?events=N         N SSE events generated once, sent in one write
  GET  /_sim/bench/sse?events=N&shape=anthropic
                                        a whole Anthropic message whose text comes in N
                                        text_delta events ("w0 ", "w1 ", ...), likewise
"""
import argparse
import gzip
import json
import os
import random
import socket
import ssl
import string
import sys
import threading
import time
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "protocol")
GB = 1024 ** 3

# Installed models: the names and sizes of the setup guide's recommendations.
DEFAULT_MODELS = [
    {"name": "qwen3-coder:latest", "size_gb": 18.6, "parameter_size": "30.5B", "family": "qwen3moe",
     "capabilities": ["completion", "tools"], "context_length": 262144, "quantization": "Q4_K_M",
     "layers": 48, "heads": 32, "kv_heads": 4, "embedding": 2048},
    {"name": "qwen3:8b", "size_gb": 5.2, "parameter_size": "8.2B", "family": "qwen3",
     "capabilities": ["completion", "tools", "thinking"], "context_length": 40960, "quantization": "Q4_K_M",
     "layers": 36, "heads": 32, "kv_heads": 8, "embedding": 4096},
    {"name": "gpt-oss:20b", "size_gb": 13.8, "parameter_size": "20.9B", "family": "gptoss",
     "capabilities": ["completion", "tools", "thinking"], "context_length": 131072, "quantization": "MXFP4"},
    {"name": "llama3.2:latest", "size_gb": 2.0, "parameter_size": "3.2B", "family": "llama",
     "capabilities": ["completion", "tools"], "context_length": 131072, "quantization": "Q4_K_M"},
    {"name": "gemma3:4b", "size_gb": 3.3, "parameter_size": "4.3B", "family": "gemma3",
     "capabilities": ["completion", "vision"], "context_length": 131072, "quantization": "Q4_K_M"},
]

DEFAULT_TEXT = "Hello! This is the codeassist model simulator, streaming a reply token by token."


def now_rfc3339(offset_seconds=0.0):
    return (datetime.now(timezone.utc) + timedelta(seconds=offset_seconds)).isoformat().replace("+00:00", "Z")


def normalize(name):
    """Ollama's short display name: implicit :latest, compared case-insensitively."""
    name = name.strip()
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        name += ":latest"
    if name.startswith("registry.ollama.ai/library/"):
        name = name[len("registry.ollama.ai/library/"):]
    elif name.startswith("library/"):
        name = name[len("library/"):]
    return name.lower()


def rand_id(prefix, n, alphabet=string.ascii_letters + string.digits):
    return prefix + "".join(random.choice(alphabet) for _ in range(n))


def estimate_tokens(obj):
    return max(1, len(json.dumps(obj, ensure_ascii=False)) // 4)


# Ollama's window when a request sets no options.num_ctx.
OLLAMA_DEFAULT_NUM_CTX = 4096


def code_tokens(obj):
    """Tokens as a code model's tokenizer counts them: more than chars / 4 (about 3.3)."""
    return max(1, len(json.dumps(obj, ensure_ascii=False)) * 10 // 33)


def truncate_like_ollama(messages, num_ctx):
    """What Ollama's chatPrompt does with a prompt longer than num_ctx: it silently drops the
    oldest messages (system messages and the last one stay). Returns (kept, dropped, tokens)."""
    kept = list(messages)
    tokens = sum(code_tokens(m) for m in kept)
    dropped = 0
    while tokens > num_ctx:
        index = next((i for i, m in enumerate(kept[:-1]) if m.get("role") != "system"), None)
        if index is None:
            break
        tokens -= code_tokens(kept.pop(index))
        dropped += 1
    return kept, dropped, tokens


def pieces(text, size):
    return [text[i:i + size] for i in range(0, len(text), size)] if text else []


class Sim:
    """Everything shared between connections, under one lock."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.queue = []  # tickets of the requests waiting for the GPU, in arrival order
        self.ticket = 0
        self.flavor = args.flavor
        self.version = args.version
        self.api_key = args.api_key
        self.reset()
        if args.scenario:
            with open(args.scenario, encoding="utf-8") as f:
                self.load_scenario(json.load(f))

    def reset(self):
        """Back to how the command line started it: models, GPU, version, no script."""
        args = self.args
        self.version = args.version
        self.vram = args.vram_gb * GB
        self.load_seconds = args.load_seconds
        self.reply_seconds = 0.0
        self.models = {normalize(m["name"]): dict(m) for m in DEFAULT_MODELS}
        self.pullable = {}
        self.faults = []
        self.log = []
        self.loaded = OrderedDict()  # name -> {refs, ready, ttl, expires, context_length, size}, LRU first
        self.loads = {}
        self.evictions = 0
        self.requests = 0
        self.conversations = []
        self.positions = {}

    def load_scenario(self, doc):
        """{"models": [...], "vram_gb": n, "version": "...", "pullable": [...],
            "conversations": [{"model": "m", "match": "text in the last turn (a user turn or a tool result) or the first user turn",
                               "replies": [{"text", "thinking", "tool_calls": [{"name", "input" | "raw_input"}],
                                            "verdict": {...}, "stop_reason", "chunk", "replay"}]}]}
        A "verdict" is sent as JSON text, or as the input of the tool a request forces with
        tool_choice (Anthropic's API)."""
        with self.lock:
            if "models" in doc:
                self.models = {normalize(m["name"]): dict(m) for m in doc["models"]}
            if "pullable" in doc:
                self.pullable = {normalize(m["name"]): dict(m) for m in doc["pullable"]}
            if "vram_gb" in doc:
                self.vram = doc["vram_gb"] * GB
            if "version" in doc:
                self.version = doc["version"]
            if "load_seconds" in doc:
                self.load_seconds = doc["load_seconds"]
            if "reply_seconds" in doc:
                self.reply_seconds = float(doc["reply_seconds"])
            if "conversations" in doc:
                self.conversations = doc["conversations"]
                self.positions = {}

    def take_fault(self, path, model, host):
        with self.lock:
            for f in self.faults:
                m = f.get("match", {})
                if m.get("path") and m["path"] != path:
                    continue
                if m.get("model") and normalize(m["model"]) != normalize(model or ""):
                    continue
                if m.get("host") and m["host"] != host:
                    continue
                f["times"] = f.get("times", 1) - 1
                if f["times"] <= 0:
                    self.faults.remove(f)
                return f
        return None

    def next_reply(self, model, messages, tools=None):
        # a conversation's "match" is looked for in the last user turn, or in the first one (so
        # a scripted exchange, e.g. a verdict and its repair, stays one conversation)
        def text(msg):
            c = msg.get("content")
            return c if isinstance(c, str) else json.dumps(c)
        # a tool result counts as the last turn: Ollama sends it as role "tool", Anthropic in a
        # user turn
        turns = [m for m in (messages or []) if isinstance(m, dict) and m.get("role") in ("user", "tool")]
        users = [m for m in turns if m.get("role") == "user"]
        last_user = text(turns[-1]) if turns else ""
        first_user = text(users[0]) if users else ""
        with self.lock:
            for i, conv in enumerate(self.conversations):
                if conv.get("model") and normalize(conv["model"]) != normalize(model or ""):
                    continue
                if conv.get("match") and conv["match"] not in last_user and conv["match"] not in first_user:
                    continue
                replies = conv.get("replies") or []
                if not replies:
                    continue
                pos = self.positions.get(i, 0)
                self.positions[i] = pos + 1
                return replies[min(pos, len(replies) - 1)]
        if tools:
            # unscripted, with tools offered: call the first one, as a tools-capable model would
            return {"tool_calls": [default_tool_call(tools[0])]}
        return {"text": DEFAULT_TEXT}

    def acquire(self, name, num_ctx, keep_alive):
        """Simulated GPU, scheduled as Ollama's scheduler does it: requests are taken in the
        order they came (a request at the head of the queue holds back those behind it, even
        ones for a loaded model); a loaded model serves at once; another is loaded (taking
        load_seconds) once idle models are evicted (expired ones, then least recently used) to
        make room; a model that is serving requests is never evicted, so the head waits for
        them. Returns with the model held: call release() when the reply has been generated."""
        info = self.models[name]
        size = int(info["size_gb"] * GB)
        ttl = 300.0 if keep_alive is None else parse_keep_alive(keep_alive)
        deadline = time.time() + 600
        with self.cond:
            self.ticket += 1
            mine = self.ticket
            self.queue.append(mine)
            try:
                while True:
                    now = time.time()
                    for n in [n for n, st in self.loaded.items() if st["refs"] == 0 and st["expires"] < now]:
                        del self.loaded[n]
                    if self.queue[0] == mine:
                        st = self.loaded.get(name)
                        if st is not None:
                            st["refs"] += 1
                            st["ttl"] = ttl
                            self.loaded.move_to_end(name)
                            break
                        if not self.loaded or sum(x["size"] for x in self.loaded.values()) + size <= self.vram:
                            st = self.loaded[name] = {"refs": 1, "ready": False, "ttl": ttl, "expires": float("inf"),
                                                      "context_length": num_ctx or 4096, "size": size,
                                                      "size_vram": min(size, self.vram)}
                            self.loads[name] = self.loads.get(name, 0) + 1
                            st["load_until"] = now + info.get("load_seconds", self.load_seconds)
                            break
                        idle = [n for n, x in self.loaded.items() if x["refs"] == 0 and x["ready"]]
                        if idle:
                            del self.loaded[idle[0]]
                            self.evictions += 1
                            continue
                    if now > deadline:
                        raise RuntimeError("simulated GPU: waited 600 s to serve " + name)
                    self.cond.wait(0.5)
            finally:
                self.queue.remove(mine)
                self.cond.notify_all()
            # served: the queue moves on while this request waits for its model to be ready
            while not st["ready"]:
                wait = st["load_until"] - time.time()
                if wait <= 0:
                    st["ready"] = True
                    self.cond.notify_all()
                    break
                self.cond.wait(wait)

    def release(self, name):
        """The reply is generated: keep_alive runs from now (0 unloads the model)."""
        with self.cond:
            st = self.loaded.get(name)
            if st is None:
                return
            st["refs"] -= 1
            if st["refs"] == 0:
                if st["ttl"] == 0:
                    del self.loaded[name]
                else:
                    st["expires"] = time.time() + st["ttl"] if st["ttl"] > 0 else float("inf")
            self.cond.notify_all()

    def generate(self, name, num_ctx, keep_alive):
        """Holds the model for the time a reply takes (reply_seconds), loading it first."""
        self.acquire(name, num_ctx, keep_alive)
        try:
            if self.reply_seconds:
                time.sleep(self.reply_seconds)
        finally:
            self.release(name)


def default_tool_call(tool):
    """A call of an offered tool (Anthropic or Ollama shape) with plausible arguments."""
    fn = tool.get("function", tool)
    schema = fn.get("input_schema") or fn.get("parameters") or {}
    sample = {"boolean": True, "string": "ok", "number": 1, "integer": 1, "array": [], "object": {}}
    args = {k: sample.get((v or {}).get("type"), "ok") for k, v in (schema.get("properties") or {}).items()}
    return {"name": fn.get("name", "tool"), "input": args}


def parse_keep_alive(v):
    if isinstance(v, (int, float)):
        return float(v)
    v = str(v).strip()
    units = {"s": 1, "m": 60, "h": 3600}
    if v and v[-1] in units:
        return float(v[:-1]) * units[v[-1]]
    return float(v)


# ===== reply rendering: a reply becomes a list of frames for one protocol =====

def reply_blocks(reply):
    """thinking, text, tool calls of a scripted reply."""
    text = reply.get("text", "")
    if "verdict" in reply:
        text = json.dumps(reply["verdict"])
    return reply.get("thinking", ""), text, reply.get("tool_calls") or []


def sse(event, data):
    return ("event: %s\ndata: %s\n\n" % (event, json.dumps(data, separators=(",", ":")))).encode()


def anthropic_frames(reply, model, input_tokens, quirks):
    """Anthropic Messages SSE; quirks=True gives Ollama's /v1/messages differences."""
    thinking, text, tools = reply_blocks(reply)
    chunk = reply.get("chunk", 6)
    out_tokens = max(1, (len(thinking) + len(text) + len(json.dumps(tools))) // 4)
    msg_id = rand_id("msg_", 24, "0123456789abcdef") if quirks else rand_id("msg_01", 22)
    start = {"id": msg_id, "type": "message", "role": "assistant", "model": model, "content": []}
    if quirks:
        start["usage"] = {"input_tokens": max(1, input_tokens // 3), "output_tokens": 0}
    else:
        start.update({"stop_reason": None, "stop_sequence": None,
                      "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 0, "output_tokens": 1}})
    frames = [sse("message_start", {"type": "message_start", "message": start})]
    index = 0
    if thinking:
        block = {"type": "thinking", "thinking": ""} if quirks else {"type": "thinking", "thinking": "", "signature": ""}
        frames.append(sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": block}))
        for p in pieces(thinking, chunk):
            frames.append(sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                      "delta": {"type": "thinking_delta", "thinking": p}}))
        if not quirks:
            frames.append(sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                      "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM" + rand_id("", 16)}}))
        frames.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    if text or not tools:
        frames.append(sse("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": {"type": "text", "text": ""}}))
        if not quirks:
            frames.append(b'event: ping\ndata: {"type": "ping"}\n\n')
        for p in pieces(text, chunk):
            frames.append(sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                      "delta": {"type": "text_delta", "text": p}}))
        frames.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    for call in tools:
        tool_id = rand_id("call_", 8, string.ascii_lowercase + string.digits) if quirks else rand_id("toolu_01", 22)
        frames.append(sse("content_block_start", {"type": "content_block_start", "index": index,
                                                  "content_block": {"type": "tool_use", "id": tool_id,
                                                                    "name": call["name"], "input": {}}}))
        # raw_input: the text a model produced as the call's input, valid JSON or not
        args = call["raw_input"] if "raw_input" in call else json.dumps(call.get("input", {}), separators=(",", ":"))
        parts = [args] if quirks else [""] + pieces(args, 7)
        for p in parts:
            frames.append(sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                      "delta": {"type": "input_json_delta", "partial_json": p}}))
        frames.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    stop = reply.get("stop_reason") or ("tool_use" if tools else "end_turn")
    delta = {"stop_reason": stop} if quirks else {"stop_reason": stop, "stop_sequence": None}
    usage = {"input_tokens": input_tokens, "output_tokens": out_tokens} if quirks else {"output_tokens": out_tokens}
    frames.append(sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    frames.append(sse("message_stop", {"type": "message_stop"}))
    return frames


def anthropic_message(reply, model, input_tokens, quirks):
    thinking, text, tools = reply_blocks(reply)
    content = []
    if thinking:
        content.append({"type": "thinking", "thinking": thinking} if quirks
                       else {"type": "thinking", "thinking": thinking, "signature": "EqQBCgIYAhIM"})
    if text or not tools:
        content.append({"type": "text", "text": text})
    for call in tools:
        tool_id = rand_id("call_", 8, string.ascii_lowercase + string.digits) if quirks else rand_id("toolu_01", 22)
        content.append({"type": "tool_use", "id": tool_id, "name": call["name"], "input": call.get("input", {})})
    out_tokens = max(1, (len(thinking) + len(text)) // 4)
    msg = {"id": rand_id("msg_01", 22), "type": "message", "role": "assistant", "model": model,
           "content": content, "stop_reason": reply.get("stop_reason") or ("tool_use" if tools else "end_turn"),
           "usage": {"input_tokens": input_tokens, "output_tokens": out_tokens}}
    if not quirks:
        msg["stop_sequence"] = None
        msg["usage"].update({"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    return msg


def ollama_chat_frames(reply, model, prompt_tokens, stream):
    thinking, text, tools = reply_blocks(reply)
    chunk = reply.get("chunk", 6)
    lines = []

    def line(message, done=False, **extra):
        obj = {"model": model, "created_at": now_rfc3339(), "message": dict(role="assistant", **message), "done": done}
        obj.update(extra)
        return (json.dumps(obj, separators=(",", ":")) + "\n").encode()

    for p in pieces(thinking, chunk):
        lines.append(line({"content": "", "thinking": p}))
    for p in pieces(text, chunk):
        lines.append(line({"content": p}))
    if tools:
        calls = [{"id": rand_id("call_", 8, string.ascii_lowercase + string.digits),
                  "function": {"index": i, "name": c["name"],
                               "arguments": c["raw_input"] if "raw_input" in c else c.get("input", {})}}
                 for i, c in enumerate(tools)]
        lines.append(line({"content": "", "tool_calls": calls}))
    eval_count = max(1, (len(thinking) + len(text)) // 4)
    final = dict(done_reason=reply.get("done_reason", "stop"), total_duration=912345678,
                 load_duration=1234567, prompt_eval_count=prompt_tokens, prompt_eval_duration=123456789,
                 eval_count=eval_count, eval_duration=789012345)
    if not stream:
        message = {"content": text}
        if thinking:
            message["thinking"] = thinking
        if tools:
            message["tool_calls"] = json.loads(lines[-1])["message"]["tool_calls"]
        return [line(message, True, **final)]
    lines.append(line({"content": ""}, True, **final))
    return lines


def bench_sse(events):
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "token"}}
    one = sse("content_block_delta", delta)
    return one * (events - 1) + sse("message_stop", {"type": "message_stop"})


def bench_anthropic(deltas):
    """One Anthropic message: start, a text block of `deltas` text_delta events, stop."""
    head = sse("message_start", {"type": "message_start", "message": {
        "id": "msg_bench", "type": "message", "role": "assistant", "model": "bench", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1}}})
    head += sse("content_block_start", {"type": "content_block_start", "index": 0,
                                        "content_block": {"type": "text", "text": ""}})
    # Formatted as bytes: json.dumps per delta would take seconds for a million of them.
    delta = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
             b'"delta":{"type":"text_delta","text":"w%d "}}\n\n')
    body = b"".join(delta % i for i in range(deltas))
    tail = sse("content_block_stop", {"type": "content_block_stop", "index": 0})
    tail += sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                  "stop_sequence": None}, "usage": {"output_tokens": deltas}})
    tail += sse("message_stop", {"type": "message_stop"})
    return head + body + tail


# ===== HTTP =====

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "codeassist-simulator"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet: the request log is the record
        pass

    # --- plumbing ---

    def read_body(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return raw, json.loads(raw) if raw else None
        except ValueError:
            return raw, None

    def record(self, doc):
        """Logs the request before answering it, so a client that has its answer always
        finds its request in the log; the status is filled in once known."""
        sim = self.server.sim
        url = urlsplit(self.path)
        entry = {"time": time.time(), "method": self.command, "path": url.path, "query": url.query,
                 "host": self.headers.get("host", ""), "port": self.server.port,
                 "headers": {k.lower(): v for k, v in self.headers.items()}, "body": doc, "status": None}
        with sim.lock:
            sim.requests += 1
            entry["n"] = sim.requests
            sim.log.append(entry)
        return entry

    def send_json(self, status, obj, headers=None, content_type="application/json"):
        body = (json.dumps(obj) + "\n").encode() if not isinstance(obj, bytes) else obj
        shape = self.shape.get("kind") if self.shape else None
        if shape == "gzip":
            body = gzip.compress(body)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if shape == "gzip":
            self.send_header("Content-Encoding", "gzip")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if shape == "trickle":
            self.trickle(body)
        else:
            self.wfile.write(body)

    def trickle(self, data, chunked=False):
        """Writes data one byte at a time, a pause after each (until the client leaves)."""
        pause = float(self.shape.get("seconds", 1))
        for i in range(len(data)):
            byte = data[i:i + 1]
            self.wfile.write(b"1\r\n%s\r\n" % byte if chunked else byte)
            self.wfile.flush()
            time.sleep(pause)

    def send_stream(self, frames, content_type, fault, headers=None):
        """Chunked response, one chunk per frame, with stall/cut/malformed faults applied."""
        shape = self.shape.get("kind") if self.shape else None
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        if shape == "gzip":
            self.send_header("Content-Encoding", "gzip")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if shape == "gzip":
            frames = [gzip.compress(b"".join(frames))]
        elif shape == "trickle":
            self.trickle(b"".join(frames), chunked=True)
            frames = []
        kind = fault.get("kind") if fault else None
        for i, frame in enumerate(frames):
            if kind == "pace" and i > 0:
                time.sleep(float(fault.get("seconds", 0.05)))
            if kind in ("stall", "cut") and i == fault.get("after", 1):
                self.wfile.flush()
                if kind == "stall":
                    time.sleep(min(float(fault.get("seconds", 30)), 60))
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if kind == "malformed" and i == fault.get("at", 1):
                frame = (b"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", broken\n\n"
                         if content_type == "text/event-stream" else b"{\"model\": broken\n")
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def apply_early_fault(self, fault, api):
        """Faults that replace the answer. True when the request has been dealt with."""
        if not fault:
            return False
        kind = fault["kind"]
        if kind == "delay":
            time.sleep(float(fault.get("seconds", 1)))
            return False
        if kind == "close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if kind == "content_type":
            ctype = fault.get("content_type", "text/html")
            self.send_json(200, b"<html><body>Sign in to the proxy</body></html>\n", content_type=ctype)
            return True
        if kind == "status":
            status = int(fault.get("status", 500))
            headers = dict(fault.get("headers", {}))
            if "retry_after" in fault:
                headers["retry-after"] = str(fault["retry_after"])
            if "retry_after_ms" in fault:
                headers["retry-after-ms"] = str(fault["retry_after_ms"])
            body = fault.get("body")
            if "raw_body" in fault:
                body = fault["raw_body"].encode()
            elif body is None:
                body = error_body(api, status)
            self.send_json(status, body, headers, fault.get("content_type", "application/json"))
            return True
        stream_type = "text/event-stream" if api == "anthropic" else "application/x-ndjson"
        if kind == "redirect":
            self.send_json(int(fault.get("status", 302)), b"<html><body>Moved</body></html>\n",
                           {"Location": fault.get("location", "http://evil.test:1/")}, "text/html")
            return True
        if kind == "frames":
            self.send_stream([f.encode() for f in fault.get("frames", [])], fault.get("content_type", stream_type), None)
            return True
        if kind in ("comments", "endless"):
            self.send_forever(kind, api, stream_type, fault)
            return True
        return False

    def send_forever(self, kind, api, content_type, fault):
        """A 200 stream that does not end (for `seconds`, or until the client leaves): comments
        only, or an answer whose text goes on and on, each piece different."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        size = int(fault.get("bytes", 4000))
        interval = float(fault.get("interval", 0.05 if kind == "comments" else 0))
        end = time.time() + float(fault.get("seconds", 120))

        def piece(i):
            if kind == "comments":
                return b": keep-alive\n\n" if api == "anthropic" else b"\n"
            text = ("%d " % i) + "x" * size
            if api == "ollama":
                return (json.dumps({"model": "m", "message": {"role": "assistant", "content": text}, "done": False})
                        + "\n").encode()
            if i == 0:
                return (sse("message_start", {"type": "message_start", "message": {
                            "id": "msg_endless", "type": "message", "role": "assistant", "model": "m", "content": [],
                            "usage": {"input_tokens": 1, "output_tokens": 1}}})
                        + sse("content_block_start", {"type": "content_block_start", "index": 0,
                                                      "content_block": {"type": "text", "text": ""}}))
            return sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "text_delta", "text": text}})
        i = 0
        while time.time() < end:
            data = piece(i)
            i += 1
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            if interval:
                time.sleep(interval)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # --- dispatch ---

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def dispatch(self):
        self.shape = None
        if not self.server.accepting.is_set():
            # "down": a request that slipped in on an open connection gets no answer
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        url = urlsplit(self.path)
        path = url.path
        raw, doc = self.read_body()
        if path.startswith("/_sim/"):
            return self.control(path, parse_qs(url.query), doc)
        sim = self.server.sim
        model = (doc or {}).get("model") if isinstance(doc, dict) else None
        host = self.headers.get("host", "")
        api = "anthropic" if path.startswith("/v1/") else "ollama"
        fault = sim.take_fault(path, model, host)
        # faults that change how the usual answer is sent, not what it is
        self.shape = fault if fault and fault["kind"] in ("trickle", "gzip") else None
        entry = self.record(doc if doc is not None else (raw.decode("utf-8", "replace")[:2000] or None))
        if self.apply_early_fault(fault, api):
            defaults = {"status": 500, "redirect": 302}
            entry["status"] = int(fault.get("status", defaults[fault["kind"]])) if fault["kind"] in defaults else 0
            return
        entry["status"] = 0
        self.entry = entry
        entry["status"] = self.route(path, doc, raw, fault)

    def route(self, path, doc, raw, fault):
        sim = self.server.sim
        cmd = self.command
        if sim.flavor == "anthropic":
            if path == "/v1/messages" and cmd == "POST":
                return self.anthropic_messages(doc, fault, quirks=False)
            return self.not_found_anthropic()
        if path == "/" and cmd in ("GET", "HEAD"):
            self.send_json(200, b"Ollama is running", content_type="text/plain; charset=utf-8")
            return 200
        if path == "/api/version" and cmd in ("GET", "HEAD"):
            self.send_json(200, {"version": sim.version})
            return 200
        if path == "/api/tags" and cmd in ("GET", "HEAD"):
            self.send_json(200, {"models": [tag_entry(m) for m in sim.models.values()]})
            return 200
        if path == "/api/ps" and cmd == "GET":
            return self.ps()
        if path == "/api/show" and cmd == "POST":
            return self.show(doc)
        if path == "/api/chat" and cmd == "POST":
            return self.chat(doc, fault)
        if path == "/api/pull" and cmd == "POST":
            return self.pull(doc, fault)
        if path == "/v1/messages" and cmd == "POST":
            if version_tuple(sim.version) < (0, 14, 0):
                self.send_json(404, b"404 page not found", content_type="text/plain")
                return 404
            return self.anthropic_messages(doc, fault, quirks=True)
        if path == "/v1/messages" and cmd == "GET":
            self.send_json(405, b"405 method not allowed", content_type="text/plain")
            return 405
        self.send_json(404, b"404 page not found", content_type="text/plain")
        return 404

    # --- Anthropic Messages (real, or Ollama's layer with quirks=True) ---

    def not_found_anthropic(self):
        self.send_json(404, error_body("anthropic", 404))
        return 404

    def anthropic_messages(self, doc, fault, quirks):
        sim = self.server.sim
        if not quirks and sim.api_key:
            key = self.headers.get("x-api-key") or (self.headers.get("authorization") or "").replace("Bearer ", "")
            if key != sim.api_key:
                self.send_json(401, {"type": "error", "error": {"type": "authentication_error",
                                                                "message": "invalid x-api-key"},
                                     "request_id": rand_id("req_01", 22)})
                return 401
        if not isinstance(doc, dict):
            self.send_json(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                            "message": "invalid JSON body"}})
            return 400
        for field in ("model", "max_tokens", "messages"):
            if not doc.get(field):
                self.send_json(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                                "message": "%s: field required" % field}})
                return 400
        model = doc["model"]
        if quirks:
            name = normalize(model)
            if name not in sim.models:
                self.send_json(404, {"type": "error", "error": {"type": "not_found_error",
                                                                "message": "model '%s' not found" % model},
                                     "request_id": rand_id("req_", 24, "0123456789abcdef")})
                return 404
            sim.generate(name, None, None)
        elif sim.reply_seconds:
            time.sleep(sim.reply_seconds)
        reply = sim.next_reply(model, doc.get("messages"), doc.get("tools"))
        choice = doc.get("tool_choice") or {}
        if "verdict" in reply and choice.get("type") == "tool" and not quirks:
            # a forced tool call: the scripted verdict is its input (Ollama's layer ignores it)
            reply = {"tool_calls": [{"name": choice.get("name"), "input": reply["verdict"]}]}
        if "replay" in reply:
            return self.replay(reply["replay"], fault, reply.get("verbatim"))
        input_tokens = estimate_tokens(doc.get("messages")) + estimate_tokens(doc.get("system") or "")
        headers = {} if quirks else {"request-id": rand_id("req_01", 22),
                                     "anthropic-ratelimit-requests-remaining": "49",
                                     "anthropic-ratelimit-tokens-remaining": "79000"}
        if doc.get("stream"):
            self.send_stream(anthropic_frames(reply, model, input_tokens, quirks), "text/event-stream", fault, headers)
        else:
            self.send_json(200, anthropic_message(reply, model, input_tokens, quirks), headers)
        return 200

    def replay(self, name, fault, verbatim=False):
        """Sends a captured payload. The SDK captures end without their final blank line; it is
        added unless verbatim (then the last event is never dispatched, as the SDKs behave)."""
        path = os.path.join(FIXTURES, os.path.basename(name))
        with open(path, "rb") as f:
            data = f.read()
        if verbatim:
            ctype = "text/event-stream" if name.endswith((".txt", ".sse")) else "application/x-ndjson"
            self.send_stream([data], ctype, fault)
        elif name.endswith((".txt", ".sse")):
            if not data.endswith(b"\n\n"):
                data = data.rstrip(b"\n") + b"\n\n"
            frames = [f + b"\n\n" for f in data.split(b"\n\n") if f]
            self.send_stream(frames, "text/event-stream", fault)
        else:
            frames = [l + b"\n" for l in data.split(b"\n") if l]
            self.send_stream(frames, "application/x-ndjson", fault)
        return 200

    # --- Ollama native ---

    def find_model(self, doc, echo_normalized=False):
        sim = self.server.sim
        model = (doc or {}).get("model") or (doc or {}).get("name")
        if not model:
            self.send_json(400, {"error": "model is required"})
            return None, 400
        name = normalize(model)
        if name not in sim.models:
            self.send_json(404, {"error": "model '%s' not found" % (name if echo_normalized else model)})
            return None, 404
        return name, 200

    def show(self, doc):
        name, status = self.find_model(doc, echo_normalized=True)
        if not name:
            return status
        m = self.server.sim.models[name]
        arch = m.get("family", "llama")
        params = parse_params(m.get("parameter_size", "7B"))
        self.send_json(200, {
            "modelfile": "# Modelfile generated by \"ollama show\"\nFROM %s\n" % name,
            "parameters": "num_ctx %d" % m.get("num_ctx", 4096) if m.get("num_ctx") else "stop \"<|im_end|>\"",
            "template": "{{ .Prompt }}",
            "details": details(m),
            "model_info": {"general.architecture": arch, "general.parameter_count": params,
                           "%s.context_length" % arch: m.get("context_length", 8192),
                           "%s.block_count" % arch: m.get("layers", 32),
                           "%s.attention.head_count" % arch: m.get("heads", 32),
                           "%s.attention.head_count_kv" % arch: m.get("kv_heads", 8),
                           "%s.embedding_length" % arch: m.get("embedding", 4096),
                           "%s.vision.context_length" % arch: 999},
            "capabilities": m.get("capabilities", ["completion"]),
            "modified_at": now_rfc3339(-86400),
        })
        return 200

    def ps(self):
        sim = self.server.sim
        models = []
        with sim.lock:
            now = time.time()
            for name, state in reversed(sim.loaded.items()):
                if state["refs"] == 0 and state["expires"] < now:
                    continue
                m = sim.models.get(name, {"name": name})
                models.append({"name": m["name"], "model": m["name"], "size": state["size"],
                               "digest": digest(m["name"]), "details": details(m),
                               "expires_at": datetime.fromtimestamp(min(state["expires"], now + 10 ** 9),
                                                                      timezone.utc).isoformat(),
                               "size_vram": state["size_vram"], "context_length": state["context_length"]})
        self.send_json(200, {"models": models})
        return 200

    def chat(self, doc, fault):
        sim = self.server.sim
        if not isinstance(doc, dict):
            self.send_json(400, {"error": "invalid character looking for beginning of value"})
            return 400
        name, status = self.find_model(doc)
        if not name:
            return status
        m = sim.models[name]
        caps = m.get("capabilities", [])
        if doc.get("tools") and "tools" not in caps:
            self.send_json(400, {"error": "registry.ollama.ai/library/%s does not support tools" % name})
            return 400
        if doc.get("think") and "thinking" not in caps:
            self.send_json(400, {"error": "\"%s\" does not support thinking" % doc["model"]})
            return 400
        options = doc.get("options") or {}
        sim.generate(name, options.get("num_ctx"), doc.get("keep_alive"))
        if not doc.get("messages"):
            self.send_json(200, {"model": doc["model"], "created_at": now_rfc3339(),
                                 "message": {"role": "assistant", "content": ""}, "done": True,
                                 "done_reason": "load"})
            return 200
        reply = sim.next_reply(doc["model"], doc.get("messages"), doc.get("tools"))
        if "replay" in reply:
            return self.replay(reply["replay"], fault, reply.get("verbatim"))
        stream = doc.get("stream", True)
        _, dropped, prompt_tokens = truncate_like_ollama(doc["messages"], options.get("num_ctx") or OLLAMA_DEFAULT_NUM_CTX)
        self.entry["prompt_tokens"], self.entry["truncated_messages"] = prompt_tokens, dropped
        frames = ollama_chat_frames(reply, doc["model"], prompt_tokens, stream)
        if stream:
            self.send_stream(frames, "application/x-ndjson", fault)
        else:
            self.send_json(200, frames[0])
        return 200

    def pull(self, doc, fault):
        sim = self.server.sim
        model = (doc or {}).get("model") or (doc or {}).get("name") or ""
        name = normalize(model)
        if name not in sim.pullable and name not in sim.models:
            self.send_json(500, {"error": "pull model manifest: file does not exist"})
            return 500
        info = sim.pullable.get(name) or sim.models[name]
        total = int(info.get("size_gb", 1) * GB)
        d = digest(name)
        frames = [{"status": "pulling manifest"}]
        for part in range(1, 5):
            frames.append({"status": "pulling %s" % d[:12], "digest": "sha256:" + d, "total": total,
                           "completed": total * part // 4})
        frames += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"},
                   {"status": "removing unused layers"}, {"status": "success"}]
        with sim.lock:
            sim.models[name] = dict(info)
        if (doc or {}).get("stream", True) is False:
            self.send_json(200, {"status": "success"})
        else:
            self.send_stream([(json.dumps(f) + "\n").encode() for f in frames], "application/x-ndjson", fault)
        return 200

    # --- control ---

    def control(self, path, query, doc):
        sim = self.server.sim
        if path == "/_sim/faults":
            with sim.lock:
                sim.faults.extend(doc if isinstance(doc, list) else [doc])
            return self.send_json(200, {"ok": True})
        if path == "/_sim/refuse":
            # down first, then answer on a connection that closes: the client's next
            # request must open a new connection, and be refused
            self.server.refuse_for(float((doc or {}).get("seconds", 1)), keep=self.connection)
            self.close_connection = True
            return self.send_json(200, {"ok": True}, {"Connection": "close"})
        if path == "/_sim/scenario":
            sim.load_scenario(doc or {})
            return self.send_json(200, {"ok": True})
        if path == "/_sim/models":
            sim.load_scenario(doc or {})
            return self.send_json(200, {"ok": True})
        if path == "/_sim/reset":
            with sim.lock:
                sim.reset()
            return self.send_json(200, {"ok": True})
        if path == "/_sim/log":
            with sim.lock:
                if self.command == "DELETE":
                    sim.log = []
                log = list(sim.log)
            return self.send_json(200, log)
        if path == "/_sim/stats":
            with sim.lock:
                stats = {"requests": sim.requests, "loads": dict(sim.loads), "evictions": sim.evictions,
                         "loaded": list(sim.loaded)}
            return self.send_json(200, stats)
        if path == "/_sim/blackhole":
            return self.send_json(200, {"port": self.server.blackhole()})
        if path == "/_sim/silent":
            return self.send_json(200, {"port": self.server.silent()})
        if path == "/_sim/sleep":
            time.sleep(min(float(query.get("seconds", ["1"])[0]), 60))
            return self.send_json(200, {"ok": True})
        if path == "/_sim/bench/sse":
            events = int(query.get("events", ["100000"])[0])
            body = self.server.bench_body(events, query.get("shape", ["plain"])[0])
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return None
        return self.send_json(404, {"error": "unknown control endpoint " + path})


def error_body(api, status):
    if api == "anthropic":
        etype = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                 529: "overloaded_error", 503: "overloaded_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": etype, "message": "simulated %d" % status},
                "request_id": rand_id("req_01", 22)}
    return {"error": {503: "server busy, please try again.  maximum pending requests exceeded",
                      429: "too many requests"}.get(status, "simulated %d" % status)}


def digest(name):
    import hashlib
    return hashlib.sha256(name.encode()).hexdigest()


def details(m):
    return {"parent_model": "", "format": "gguf", "family": m.get("family", "llama"),
            "families": [m.get("family", "llama")], "parameter_size": m.get("parameter_size", "7B"),
            "quantization_level": m.get("quantization", "Q4_K_M")}


def tag_entry(m):
    return {"name": m["name"], "model": m["name"], "modified_at": now_rfc3339(-86400),
            "size": int(m.get("size_gb", 1) * GB), "digest": digest(m["name"]), "details": details(m)}


def parse_params(s):
    units = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
    s = str(s).strip().upper()
    if s and s[-1] in units:
        return int(float(s[:-1]) * units[s[-1]])
    return int(float(s or 0))


def version_tuple(v):
    core = v.split("-")[0]
    return tuple(int(x) for x in core.split(".") if x.isdigit())


class Server:
    """Accept loop on 127.0.0.1 with one thread per connection; can close its listener for a
    while so connections are refused for real."""

    def __init__(self, sim, port, tls=None):
        self.sim = sim
        self.tls = tls
        self.listener = self.listen(port)
        self.port = self.listener.getsockname()[1]
        self.accepting = threading.Event()
        self.accepting.set()
        self.bench_cache = {}
        self.conns = set()
        self.conns_lock = threading.Lock()

    def listen(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(512)
        return s

    def bench_body(self, events, shape="plain"):
        key = (events, shape)
        if key not in self.bench_cache:
            self.bench_cache[key] = bench_anthropic(events) if shape == "anthropic" else bench_sse(events)
        return self.bench_cache[key]

    def blackhole(self):
        """A port whose accept queue is full, so a new connection never completes (a
        connect timeout without leaving loopback)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(0)
        self.keep = getattr(self, "keep", [])
        self.keep.append(s)
        for _ in range(3):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(s.getsockname())
            except (BlockingIOError, OSError):
                pass
            self.keep.append(c)
        time.sleep(0.05)
        return s.getsockname()[1]

    def silent(self):
        """A port that accepts connections and never answers (a first-byte timeout)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        self.keep = getattr(self, "keep", [])
        self.keep.append(s)

        def hold():
            while True:
                c, _ = s.accept()
                self.keep.append(c)
        threading.Thread(target=hold, daemon=True).start()
        return s.getsockname()[1]

    def refuse_for(self, seconds, keep=None):
        """Like a server that went down: open connections drop, new ones are refused."""
        def reopen():
            time.sleep(seconds)
            for attempt in range(100):
                try:
                    self.listener = self.listen(self.port)
                    break
                except OSError as e:
                    print("llm_server: reopening port %d: %s" % (self.port, e), file=sys.stderr, flush=True)
                    time.sleep(0.05)
            self.accepting.set()
        self.accepting.clear()
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            if c is keep:
                continue
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        old = self.listener
        try:
            old.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        old.close()
        threading.Thread(target=reopen, daemon=True).start()

    def serve(self):
        while True:
            self.accepting.wait()
            listener = self.listener
            try:
                conn, addr = listener.accept()
            except OSError:
                continue  # the listener was closed to refuse connections
            threading.Thread(target=self.handle, args=(conn, addr), daemon=True).start()

    def handle(self, conn, addr):
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK stall every keep-alive answer by 40 ms (Go's server, Ollama's,
        # sets it too).
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.conns_lock:
            self.conns.add(conn)
        try:
            if self.tls:
                conn.settimeout(10)
                conn = self.tls.wrap_socket(conn, server_side=True)
                conn.settimeout(None)
            Handler(conn, addr, self)
        except (ConnectionError, BrokenPipeError, OSError):
            pass
        finally:
            with self.conns_lock:
                self.conns.discard(conn)
            try:
                conn.close()
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser(description="codeassist model simulator (loopback only)")
    ap.add_argument("--flavor", choices=["ollama", "anthropic"], default="ollama")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--port-file", help="write the port here once listening")
    ap.add_argument("--scenario", help="JSON scenario file")
    ap.add_argument("--version", default="0.32.15", help="Ollama version to report")
    ap.add_argument("--vram-gb", type=float, default=24.0)
    ap.add_argument("--load-seconds", type=float, default=0.0)
    ap.add_argument("--api-key", help="anthropic flavor: the only key accepted")
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    ap.add_argument("--tls-key", help="and this private key (PEM)")
    args = ap.parse_args()

    sim = Sim(args)
    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    server = Server(sim, args.port, tls)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % server.port)
        os.rename(tmp, args.port_file)
    print("llm_server: %s flavor on http://127.0.0.1:%d" % (args.flavor, server.port), file=sys.stderr, flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
