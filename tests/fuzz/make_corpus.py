#!/usr/bin/env python3
"""Writes the seed corpora of the framer and model-facts targets from tests/fixtures.

    python3 tests/fuzz/make_corpus.py     (from the repository root; the output is committed)

A framer input is two header bytes (max_size selector, chunking) and then the stream; see
framing.c. A model_facts input is a distance limit byte, then up to three lines; see
model_facts.c. The yaml_config seeds are plain YAML files, kept by hand."""
import glob, json, os, re

FIX = "tests/fixtures/protocol"
OUT = "tests/fuzz/corpus"
# (max_size selector, chunking): a 1 MiB limit in chunks of 0..8 bytes; 257 bytes in chunks
# of 0..2 and of 0..128; a tight 33-byte limit in chunks of 0..4
HEADERS = [(255, 3), (32, 1), (32, 7), (4, 2)]

def write(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)

for path in sorted(glob.glob(FIX + "/*sse*.txt")):
    body = open(path, "rb").read()
    for m, c in HEADERS:
        write("sse", "%s.%d-%d" % (os.path.basename(path), m, c), bytes([m, c]) + body)
    # the same stream with CRLF and with lone CR line ends
    write("sse", os.path.basename(path) + ".crlf", bytes([255, 5]) + body.replace(b"\n", b"\r\n"))
    write("sse", os.path.basename(path) + ".cr", bytes([255, 5]) + body.replace(b"\n", b"\r"))

ndjson = [p for p in sorted(glob.glob(FIX + "/*.ndjson")) + sorted(glob.glob(FIX + "/ollama-*.json"))]
for path in ndjson:
    body = open(path, "rb").read()
    if path.endswith(".json"):   # one object a line, as a stream would carry it
        body = json.dumps(json.loads(body)).encode() + b"\n"
    for m, c in HEADERS:
        write("ndjson", "%s.%d-%d" % (os.path.basename(path), m, c), bytes([m, c]) + body)
    write("ndjson", os.path.basename(path) + ".crlf", bytes([255, 5]) + body.replace(b"\n", b"\r\n"))

# names, sizes and versions from the Ollama fixtures, and the shapes the unit tests use
names, sizes, versions = set(), set(), set()
for path in glob.glob(FIX + "/ollama-*.json"):
    text = open(path).read()
    names.update(re.findall(r'"(?:name|model)"\s*:\s*"([^"]+)"', text))
    sizes.update(re.findall(r'"parameter_size"\s*:\s*"([^"]+)"', text))
    versions.update(re.findall(r'"version"\s*:\s*"([^"]+)"', text))
names.update(["qwen3-coder:30b", "library/qwen3:8b", "registry.ollama.ai/library/llama3:latest",
              "hf.co/bartowski/Qwen2.5-Coder-32B-Instruct-GGUF:Q4_K_M", "localhost:5000/me/m:v1@sha256:abc",
              "QWEN3:8B", " qwq:32b "])
sizes.update(["137M", "3.2B", "30.5B", "1.5T", "8B", "7", "120000", " 8 B", "0.5b"])
versions.update(["0.14.0", "0.32.15", "0.33.0-rc2", "0.33.0-rc10", "v0.5.1", "0.6.0+build", "1", "0.1.2.3"])
names, sizes, versions = sorted(names), sorted(sizes), sorted(versions)
for i in range(max(len(names), len(sizes), len(versions))):
    a, b, c = names[i % len(names)], sizes[i % len(sizes)], versions[i % len(versions)]
    write("model_facts", "n%02d" % i, bytes([2]) + ("%s\n%s\n%s" % (a, names[(i + 1) % len(names)], b)).encode())
    write("model_facts", "v%02d" % i, bytes([3]) + ("%s\n%s\n%s" % (c, versions[(i + 1) % len(versions)], c)).encode())
