/* The sign-in bot challenge (idp/services/bot_challenge.py): find n such that SHA-256("puzzle:n")
   begins with `bits` zero bits. Solved in slices while the resident types; the server asks for the
   answer only during an attack. A submit before it is ready waits for it. */
(function () {
  "use strict";
  var field = document.querySelector("input[data-bot-puzzle]");
  if (!field) { return; }
  var form = field.form, answer = form.querySelector("input[name=bot_solution]");
  var status = form.querySelector("[data-bot-status]");
  var puzzle = field.getAttribute("data-bot-puzzle"), shift = 32 - Number(field.getAttribute("data-bot-bits"));
  var K = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2];
  var w = new Array(64);

  function rotr(x, n) { return (x >>> n) | (x << (32 - n)); }

  /* The first 32 bits of SHA-256 of an ASCII text of at most 55 characters (one block). */
  function firstWord(text) {
    var i, a, b, c, d, e, f, g, h, t1, t2, length = text.length;
    for (i = 0; i < 16; i++) { w[i] = 0; }
    for (i = 0; i < length; i++) { w[i >> 2] |= text.charCodeAt(i) << (24 - (i % 4) * 8); }
    w[length >> 2] |= 0x80 << (24 - (length % 4) * 8);
    w[15] = length * 8;
    for (i = 16; i < 64; i++) {
      a = w[i - 15]; b = w[i - 2];
      w[i] = (w[i - 16] + (rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3)) + w[i - 7]
              + (rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10))) | 0;
    }
    a = 0x6a09e667; b = 0xbb67ae85; c = 0x3c6ef372; d = 0xa54ff53a;
    e = 0x510e527f; f = 0x9b05688c; g = 0x1f83d9ab; h = 0x5be0cd19;
    for (i = 0; i < 64; i++) {
      t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    return (a + 0x6a09e667) >>> 0;
  }

  var n = 0, solved = false, submitWhenSolved = false;
  function work() {
    for (var end = n + 5000; n < end; n++) {  // short slices: typing stays smooth on slow phones
      if (firstWord(puzzle + ":" + n) >>> shift === 0) {
        answer.value = String(n);
        solved = true;
        if (submitWhenSolved) { form.submit(); }
        return;
      }
    }
    setTimeout(work, 0);
  }
  form.addEventListener("submit", function (event) {
    if (solved) { return; }
    event.preventDefault();
    submitWhenSolved = true;
    if (status) { status.textContent = status.getAttribute("data-wait"); }
  });
  work();
}());
