// bench/tokenizer_ref.mjs - the reference for GPT-2 tokenizer throughput:
// js-tiktoken's getEncoding('gpt2') (the encoder the test vectors came from)
// encoding a text file several times, reporting MB/s and the token count.
// Never part of the build or the tests; it reads one file and prints.
//
//   Install the reference once, OUTSIDE the repository (npm registry):
//     mkdir -p /tmp/tokbench && cd /tmp/tokbench && npm install js-tiktoken@1.0.21
//   Run (NODE_PATH names the node_modules directory it was installed into):
//     NODE_PATH=/tmp/tokbench/node_modules node bench/tokenizer_ref.mjs FILE [--runs N] [--ids OUT]
//
// Output, one line per timed run and a summary line:
//   ref js-tiktoken@1.0.21 gpt2: BYTES bytes, TOKENS tokens, best X MB/s, median Y MB/s (N runs)
// MB is 10^6 bytes of the file as read (UTF-8). The first encode is an untimed
// warm-up (JIT, rank tables). --ids OUT writes the ids, one per line, so that
// another encoder's output can be compared with `cmp`.
//
// encode(text, [], []) = no special token allowed and none disallowed: the text
// "<|endoftext|>" is encoded as ordinary text, as the dpo tokenizer does.

import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const WANT_VERSION = "1.0.21";

function die(msg) {
    process.stderr.write(`tokenizer_ref: ${msg}\n`);
    process.exit(2);
}

function usage() {
    die("usage: NODE_PATH=/tmp/tokbench/node_modules node bench/tokenizer_ref.mjs FILE [--runs N] [--ids OUT]");
}

// ---------------------------------------------------------------- arguments
let file = null, runs = 5, idsOut = null;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--runs" && i + 1 < argv.length) {
        runs = Number(argv[++i]);
        if (!Number.isInteger(runs) || runs < 1 || runs > 1000) die("--runs must be an integer in 1..1000");
    } else if (argv[i] === "--ids" && i + 1 < argv.length) {
        idsOut = argv[++i];
    } else if (argv[i].startsWith("--") || file !== null) {
        usage();
    } else {
        file = argv[i];
    }
}
if (file === null) usage();

// ---------------------------------------------------------------- find js-tiktoken
// ES modules ignore NODE_PATH, so resolve through require() from each directory
// it lists (the CommonJS build of js-tiktoken is the same code).
const dirs = (process.env.NODE_PATH || "").split(":").filter((d) => d !== "");
let tiktoken = null, version = "?", tried = [];
for (const d of dirs) {
    const req = createRequire(join(d, "_resolve_from_here.js"));
    try {
        tiktoken = req("js-tiktoken");
        try {
            version = JSON.parse(readFileSync(join(d, "js-tiktoken", "package.json"), "utf8")).version;
        } catch (err) {
            version = "?"; // package.json is not exported; found by path when the layout is npm's
        }
        break;
    } catch (err) {
        tried.push(`${d}: ${err.code || err.message}`);
        tiktoken = null;
    }
}
if (tiktoken === null) {
    die(`js-tiktoken not found${dirs.length ? " in NODE_PATH (" + tried.join("; ") + ")" : " (NODE_PATH is not set)"}.\n` +
        "Install it outside the repository and point NODE_PATH at it:\n" +
        `  mkdir -p /tmp/tokbench && cd /tmp/tokbench && npm install js-tiktoken@${WANT_VERSION}\n` +
        "  NODE_PATH=/tmp/tokbench/node_modules node bench/tokenizer_ref.mjs FILE");
}
if (version !== WANT_VERSION) {
    process.stderr.write(`tokenizer_ref: warning: js-tiktoken ${version}, the vectors were made with ${WANT_VERSION}\n`);
}

// ---------------------------------------------------------------- encode, timed
let text, bytes;
try {
    const buf = readFileSync(file);
    bytes = buf.length;
    text = buf.toString("utf8");
} catch (err) {
    die(`${file}: ${err.message}`);
}
const enc = tiktoken.getEncoding("gpt2");

let ids = enc.encode(text, [], []); // warm-up, untimed
const rates = [];
for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    const out = enc.encode(text, [], []);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (out.length !== ids.length) die("token count changed between runs");
    rates.push(bytes / 1e6 / s);
    console.log(`run ${r + 1}: ${s.toFixed(3)} s, ${(bytes / 1e6 / s).toFixed(2)} MB/s`);
}
const sorted = [...rates].sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)];
console.log(`ref js-tiktoken@${version} gpt2: ${bytes} bytes, ${ids.length} tokens, ` +
            `best ${sorted[sorted.length - 1].toFixed(2)} MB/s, median ${median.toFixed(2)} MB/s (${runs} runs)`);
if (idsOut !== null) writeFileSync(idsOut, ids.join("\n") + (ids.length ? "\n" : ""));
