// Prices and quantities snap to the symbol's tick and step sizes exactly: no float residue.
import assert from "node:assert/strict";
import { test } from "node:test";
import { add, compare, isDecimal, multiply, onStep, plain, snap, snapNumber, stepDigits, subtract, toFixedDigits } from "./decimal";

test("snap rounds to a whole number of ticks, down, up or to the nearest", () => {
  assert.equal(snap("61807.123", "0.1"), "61807.1");
  assert.equal(snap("61807.15", "0.1"), "61807.2"); // a half goes away from zero
  assert.equal(snap("61807.149", "0.1", "nearest"), "61807.1");
  assert.equal(snap("61807.101", "0.1", "up"), "61807.2");
  assert.equal(snap("61807.199", "0.1", "down"), "61807.1");
  assert.equal(snap("0.00012345", "0.00000010"), "0.0001235");
  assert.equal(snap("123", "5"), "125");
  assert.equal(snap("-1.26", "0.5"), "-1.5");
  assert.equal(snap("7", "0"), "7");
});

test("a float from the chart snaps without float residue", () => {
  assert.equal(snapNumber(0.1 + 0.2, "0.01"), "0.3");
  assert.equal(snapNumber(100.04999999, "0.1"), "100");
  assert.equal(snapNumber(61807.26, "0.5"), "61807.5");
});

test("onStep tells a multiple of the step, whatever the trailing zeros", () => {
  assert.ok(onStep("0.003", "0.001"));
  assert.ok(onStep("0.0030", "0.00100"));
  assert.ok(!onStep("0.0035", "0.001"));
  assert.ok(onStep("100", "0.1"));
  assert.ok(!onStep("100.05", "0.1"));
});

test("exact sums, products and comparisons", () => {
  assert.equal(add("0.1", "0.2"), "0.3");
  assert.equal(subtract("10", "10.5"), "-0.5");
  assert.equal(multiply("0.003", "61807.1"), "185.4213");
  assert.equal(compare("5", "4.99999999"), 1);
  assert.equal(compare("1.10", "1.1"), 0);
  assert.equal(compare("-2", "1"), -1);
  assert.equal(stepDigits("0.010"), 2);
  assert.equal(stepDigits("1"), 0);
  assert.equal(toFixedDigits("61807.1", 2), "61807.10");
  assert.equal(toFixedDigits("-0.004", 2), "0.00");
  assert.ok(isDecimal(".5") && isDecimal("12") && !isDecimal("1e5") && !isDecimal("") && !isDecimal("."));
});

test("the API's exponent forms read exactly, and are written plainly", () => {
  assert.equal(plain("0E-8"), "0");
  assert.equal(plain("1.50E+3"), "1500");
  assert.equal(plain("-2.5e-3"), "-0.0025");
  assert.equal(plain("0.00180892"), "0.00180892");
  assert.equal(compare("1E+2", "100"), 0);
  assert.ok(!isDecimal("1E+2")); // typed into the ticket, an exponent is not taken
});
