// ardm view: replays one sample of a generation trace (ardm/evaluation/viewer.py writes the data).
// The data holds the starting tokens and per step only the changes; states are rebuilt from
// snapshots taken every SNAP steps. Token strings are only ever set as text, never as markup.
(function () {
  "use strict";
  var errorBox = document.getElementById("errors");
  function report(msg) { errorBox.textContent += msg + "\n"; errorBox.hidden = false; }
  window.addEventListener("error", function (e) { report("error: " + e.message); });
  var consoleError = console.error;
  console.error = function () {
    report("console.error: " + Array.prototype.join.call(arguments, " "));
    consoleError.apply(console, arguments);
  };

  var D = JSON.parse(document.getElementById("trace-data").textContent);
  var L = D.length, P = D.prompt_length, S = D.steps.length, sudoku = D.task === "sudoku";
  var SNAP = 16, KIND = ["wrote", "overwrote with", "remasked"];
  var first = sudoku ? P : 0;  // positions shown: the 81 cells, or the whole sequence with its prompt
  var start = new Int32Array(L).fill(-1), fixed = new Uint8Array(L);
  D.initial.forEach(function (e) { start[e[0]] = e[1]; fixed[e[0]] = 1; });

  function apply(state, s) {
    var ev = D.steps[s].ev;
    for (var i = 0; i < ev.length; i += 3) state[ev[i]] = ev[i + 2];
  }
  // snapshots[j] = the state after j * SNAP steps; history[pos] = lines for the hover box
  var snapshots = [Int32Array.from(start)], history = [], cur = Int32Array.from(start);
  var counts = [];  // per step [writes, overwrites, remasks]
  for (var p = 0; p < L; p++) {
    history.push(fixed[p] ? [(p < P ? "prompt " : "given ") + quote(start[p])] : []);
  }
  for (var s = 0; s < S; s++) {
    var ev = D.steps[s].ev, c = [0, 0, 0];
    for (var i = 0; i < ev.length; i += 3) {
      c[ev[i + 1]]++;
      history[ev[i]].push(stepName(s) + ": " + KIND[ev[i + 1]] + (ev[i + 1] === 2 ? " " + quote(cur[ev[i]])
        : " " + quote(ev[i + 2])));
      cur[ev[i]] = ev[i + 2];
    }
    counts.push(c);
    if ((s + 1) % SNAP === 0) snapshots.push(Int32Array.from(cur));
  }

  function quote(t) { return t < 0 ? "MASK" : JSON.stringify(D.tokens[t]); }
  function stepName(s) { return D.steps[s].fill ? "final fill" : "step " + D.steps[s].k; }
  function glyph(t) {
    if (t < 0) return sudoku ? "" : "\u00b7";
    var text = D.tokens[t];
    return text.replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5") || "\u2205";
  }

  // the board: one .tok per shown position (+ a line-break element after each in text mode)
  var board = document.getElementById("board"), cells = [], breaks = [], heats = [], focus = -1;
  for (var q = first; q < (sudoku ? P + 81 : L); q++) {
    var cell = document.createElement("span"), text = document.createElement("span");
    var heat = document.createElement("span");
    cell.className = "tok";
    text.className = "t";
    heat.className = "heat";
    cell.appendChild(text);
    cell.appendChild(heat);
    cell.dataset.pos = q;
    if (sudoku) {
      var r = Math.floor((q - P) / 9), col = (q - P) % 9;
      if (col === 2 || col === 5) cell.classList.add("cb");
      if (r === 2 || r === 5) cell.classList.add("rb");
    }
    cell.addEventListener("mouseenter", function (e) { showHistory(+e.currentTarget.dataset.pos); });
    board.appendChild(cell);
    cells.push(cell);
    heats.push(heat);
    if (!sudoku) {
      var br = document.createElement("i");
      br.className = "br";
      board.appendChild(br);
      breaks.push(br);
    }
  }
  function showHistory(pos) {
    if (!(pos >= first && pos < first + cells.length)) return;
    var lines = history[pos];
    if (focus >= 0) cells[focus - first].classList.remove("focus");
    focus = pos;
    cells[pos - first].classList.add("focus");
    var where = sudoku ? "cell r" + (Math.floor((pos - P) / 9) + 1) + "c" + ((pos - P) % 9 + 1) : "position " + pos;
    document.getElementById("history").textContent = where + ": " + (lines.length ? lines.join("; ") : "never written");
  }

  // Sudoku peers: the 20 cells sharing a row, column or box
  var peers = [];
  if (sudoku) {
    for (var a = 0; a < 81; a++) {
      var list = [];
      for (var b = 0; b < 81; b++) {
        var same = Math.floor(a / 9) === Math.floor(b / 9) || a % 9 === b % 9 ||
          (Math.floor(a / 27) === Math.floor(b / 27) && Math.floor(a % 9 / 3) === Math.floor(b % 9 / 3));
        if (a !== b && same) list.push(b);
      }
      peers.push(list);
    }
  }

  // the chart: stacked bars of writes / overwrites / remasks per step, and a marker at the current one
  var NS = "http://www.w3.org/2000/svg", chart = document.getElementById("chart"), marker;
  (function drawChart() {
    var top = 1, n = Math.max(S, 1);
    counts.forEach(function (c) { top = Math.max(top, c[0] + c[1] + c[2]); });
    chart.setAttribute("viewBox", "0 0 " + n + " 100");
    chart.setAttribute("preserveAspectRatio", "none");
    var colors = ["#4caf50", "#e53935", "#8e44ad"];
    counts.forEach(function (c, s) {
      var y = 100;
      for (var k = 0; k < 3; k++) {
        if (!c[k]) continue;
        var h = 96 * c[k] / top, rect = document.createElementNS(NS, "rect");
        y -= h;
        rect.setAttribute("x", s + 0.1); rect.setAttribute("width", 0.8);
        rect.setAttribute("y", y); rect.setAttribute("height", h);
        rect.setAttribute("fill", colors[k]);
        chart.appendChild(rect);
      }
    });
    marker = document.createElementNS(NS, "rect");
    marker.setAttribute("width", 1); marker.setAttribute("y", 0); marker.setAttribute("height", 100);
    marker.setAttribute("fill", "rgba(0, 0, 0, 0.12)");
    chart.appendChild(marker);
    chart.addEventListener("click", function (e) {
      var box = chart.getBoundingClientRect();
      go(Math.min(S, Math.floor((e.clientX - box.left) / box.width * n) + 1));
    });
  })();

  function gateOf(s) {  // the gate's p (0..1) at step s over the target span, or null
    var g = D.steps[s] && D.steps[s].gate;
    if (!g) return null;
    var raw = atob(g), out = new Float32Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i) / 255;
    return out;
  }

  var slider = document.getElementById("slider"), step = 0, totals;
  function go(i) {  // show the state after i steps (0: the start)
    step = Math.max(0, Math.min(S, i | 0));
    var j = Math.floor(step / SNAP), state = Int32Array.from(snapshots[j]);
    for (var s = j * SNAP; s < step; s++) apply(state, s);
    var kind = new Int8Array(L).fill(-1);  // what the last step did at each position
    if (step > 0) {
      var ev = D.steps[step - 1].ev;
      for (var e = 0; e < ev.length; e += 3) kind[ev[e]] = ev[e + 1];
    }
    var gate = step > 0 ? gateOf(step - 1) : null, masked = 0, conflicts = 0;
    for (var c = 0; c < cells.length; c++) {
      var pos = first + c, t = state[pos], cls = "tok";
      cls += fixed[pos] ? " fixed" : kind[pos] === 0 ? " new" : kind[pos] === 1 ? " over"
        : kind[pos] === 2 ? " remask" : t < 0 ? " masked" : " kept";
      if (t < 0) masked++;
      if (sudoku) {
        cls += (c % 9 === 2 || c % 9 === 5 ? " cb" : "") + (Math.floor(c / 9) === 2 || Math.floor(c / 9) === 5 ? " rb" : "");
        if (t >= 0 && peers[c].some(function (o) { return state[P + o] >= 0 && D.tokens[state[P + o]] === D.tokens[t]; })) {
          cls += " conflict";
          conflicts++;
        }
      } else {
        breaks[c].className = t >= 0 && D.tokens[t].indexOf("\n") >= 0 ? "br on" : "br";
      }
      cells[c].className = cls + (pos === focus ? " focus" : "");
      cells[c].firstChild.textContent = glyph(t);
      var pg = gate && pos >= P ? gate[pos - P] : null;
      heats[c].style.background = pg === null ? "transparent" : "rgba(230, 110, 0, " + (0.05 + 0.9 * pg).toFixed(3) + ")";
      heats[c].title = pg === null ? "" : "gate p = " + pg.toFixed(2);
    }
    slider.value = step;
    var now = step > 0 ? counts[step - 1] : [0, 0, 0];
    totals = [0, 0, 0];
    for (var s2 = 0; s2 < step; s2++) for (var k = 0; k < 3; k++) totals[k] += counts[s2][k];
    document.getElementById("step-label").textContent = step === 0 ? "start (" + S + " steps)"
      : stepName(step - 1) + " of " + D.budget + " (" + step + "/" + S + ")";
    document.getElementById("counts").textContent = "this step: +" + now[0] + " written, " + now[1] +
      " overwritten, " + now[2] + " remasked; so far: " + totals[0] + " written, " + totals[1] +
      " overwritten, " + totals[2] + " remasked; " + masked + " masked" + (sudoku ? ", " + conflicts + " in conflict" : "");
    marker.setAttribute("x", Math.max(step - 1, 0));
    document.body.dataset.step = step;
    board.dataset.masked = masked;
    board.dataset.conflicts = conflicts;
  }

  var timer = null, playButton = document.getElementById("play");
  function play(on) {
    if (timer) clearInterval(timer);
    timer = null;
    if (on) {
      if (step >= S) go(0);
      timer = setInterval(function () { if (step >= S) play(false); else go(step + 1); },
        Math.max(30, Math.min(250, 8000 / Math.max(S, 1))));
    }
    playButton.textContent = on ? "Pause" : "Play";
  }
  playButton.addEventListener("click", function () { play(!timer); });
  slider.addEventListener("input", function () { play(false); go(+slider.value); });

  // #step=N (or #step=last) opens the page at a step, &pos=N shows a position's history; #play plays
  function fromHash() {
    var m = /step=(\d+|last)/.exec(location.hash), h = /pos=(\d+)/.exec(location.hash);
    go(m ? (m[1] === "last" ? S : +m[1]) : 0);
    if (h) showHistory(+h[1]);
    if (/\bplay\b/.test(location.hash)) play(true);
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
  document.body.dataset.loadMs = performance.now().toFixed(1);
  document.body.dataset.ready = "1";
})();
