// node --test: qs-client.js's offset rule (docs/delivery.md) against hand-picked cases.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  compareOffsets, isNewerOffset, parseOffset,
} from "../../services/gateway/http/static/qs-client.js";

const MAX = "18446744073709551615"; // 2^64-1, the largest part the gateway accepts

test("parses both forms into BigInts", () => {
  assert.deepEqual(parseOffset("k3x9q2ab:1700000000000-7"),
    { epoch: "k3x9q2ab", ms: 1700000000000n, seq: 7n });
  assert.deepEqual(parseOffset("5-0"), { epoch: null, ms: 5n, seq: 0n });
  assert.deepEqual(parseOffset(`k3x9q2ab:${MAX}-${MAX}`),
    { epoch: "k3x9q2ab", ms: 2n ** 64n - 1n, seq: 2n ** 64n - 1n });
});

test("refuses what the gateway refuses", () => {
  const bad = [
    undefined, null, 5, {}, "", "5", "5-", "-5", "a-b", "5-0 ", " 5-0", "5-0\n",
    "K3X9Q2AB:5-0", "short:5-0", "k3x9q2ab9:5-0", ":5-0", "k3x9q2ab:5",
    "١٢-٣", // Arabic-Indic digits: \d would take them, the gateway does not
    `${MAX.slice(0, -1)}6-0`, // 2^64
    `0-${MAX}0`, // 21 digits
  ];
  for (const value of bad) assert.equal(parseOffset(value), null, JSON.stringify(value));
});

test("orders by ms, then seq, as big integers", () => {
  assert.equal(compareOffsets("e0000000:1-0", "e0000000:1-0"), 0);
  assert.equal(compareOffsets("e0000000:1-1", "e0000000:1-0"), 1);
  assert.equal(compareOffsets("e0000000:1-9", "e0000000:2-0"), -1);
  assert.equal(compareOffsets("9-0", "10-0"), -1, "numbers, not strings");
  // Beyond 2^53 Number would round both to the same value.
  assert.equal(compareOffsets("9007199254740993-0", "9007199254740992-0"), 1);
  assert.equal(compareOffsets(`e0000000:${MAX}-1`, `e0000000:${MAX}-0`), 1);
  assert.equal(compareOffsets("e0000000:1-0", "e0000000:1-00"), 0, "leading zeros");
});

test("cannot order across epochs or with a non-offset", () => {
  for (const [a, b] of [["aaaaaaaa:1-0", "bbbbbbbb:2-0"], ["1-0", "aaaaaaaa:2-0"], ["x", "1-0"]]) {
    const result = compareOffsets(a, b);
    assert.ok(Number.isNaN(result), `${a} vs ${b}`);
    assert.equal(result >= 0 || result <= 0, false, "no comparison may hold");
  }
});

test("another epoch is always newer; within one, only a later position", () => {
  assert.equal(isNewerOffset("aaaaaaaa:1-0", null), true);
  assert.equal(isNewerOffset("aaaaaaaa:1-0", "not an offset"), true);
  assert.equal(isNewerOffset("aaaaaaaa:1-1", "aaaaaaaa:1-0"), true);
  assert.equal(isNewerOffset("aaaaaaaa:1-0", "aaaaaaaa:1-0"), false);
  assert.equal(isNewerOffset("aaaaaaaa:0-9", "aaaaaaaa:1-0"), false);
  assert.equal(isNewerOffset("bbbbbbbb:0-0", "aaaaaaaa:9-9"), true);
  assert.equal(isNewerOffset("0-0", "aaaaaaaa:9-9"), true);
  assert.equal(isNewerOffset("garbage", "aaaaaaaa:1-0"), false);
});
