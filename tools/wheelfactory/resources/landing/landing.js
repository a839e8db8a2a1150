// The landing page's selector: pick a setup, see the command. Data: the JSON in #wf-data,
// rendered by wheelfactory/landing.py from the index's manifest. The decision mirrors
// which.advise() (wheelfactory/which.py) for a machine with that setup; which files fit
// which OS and Python, and which GPUs (resources/gpus.toml) their kernels run on, was
// decided at render time, so this script only looks those up.
// tests/integration/test_landing_browser.py checks both agree.
"use strict";
(function () {
  var data = JSON.parse(document.getElementById("wf-data").textContent);
  // No index_url in the manifest: the index root is the folder this page is served from.
  if (!data.root && /^https?:$/.test(location.protocol)) {
    data.root = (location.origin + location.pathname).replace(/\/(index\.html)?$/, "");
    Array.prototype.forEach.call(document.querySelectorAll(".wf-root"), function (e) {
      e.textContent = data.root;
    });
  }
  if (!data.root) data.root = "<index URL>";
  var $ = function (id) { return document.getElementById(id); };
  var FIELDS = ["project", "platform", "gpu", "python", "torch", "cuda"];
  var platformLabel = {};
  data.platforms.forEach(function (p) { platformLabel[p[0]] = p[1]; });
  var gpuByKey = {};
  data.gpus.forEach(function (g) { gpuByKey[g.key] = g; });

  function vt(text) { return (String(text).split("+")[0].match(/\d+/g) || []).map(Number); }
  function cmp(a, b) {
    var x = vt(a), y = vt(b);
    for (var i = 0; i < Math.max(x.length, y.length); i++) {
      var d = (x[i] || 0) - (y[i] || 0);
      if (d) return d < 0 ? -1 : 1;
    }
    return 0;
  }
  function has(list, x) { return list.indexOf(x) >= 0; }
  function uniq(list) { return list.filter(function (x, i) { return list.indexOf(x) === i; }); }
  function flat(lists) { return [].concat.apply([], lists); }

  function cudaTag(cuda) { var p = cuda.split("."); return "cu" + parseInt(p[0], 10) + parseInt(p[1], 10); }
  function viewUrl(cuda, torch) { return data.root + "/" + cudaTag(cuda) + "/torch" + torch + "/simple/"; }
  // which.install_commands: `python -m pip` installs into the Python it names.
  function commands(project, url) {
    var tail = " install " + project + " --extra-index-url " + url;
    return { pip: "python -m pip" + tail, portable: data.portable_python + " -m pip" + tail,
             uv: "uv pip" + tail };
  }
  // which.torch_install_command (double quotes: cmd.exe passes single quotes on to pip).
  function torchCommand(torch, cuda) {
    return "python -m pip install \"torch==" + torch + ".*\" --index-url " + data.pytorch_index +
           "/" + cudaTag(cuda);
  }

  // Whether a file serves this torch minor: its own, or any from a stable-ABI file's floor
  // on (landing.torch_fits).
  function torchFits(f, torch) {
    return f.torch === "abi" ? (!f.floor || cmp(torch, f.floor) >= 0) : f.torch === torch;
  }
  // The page's torch minors that these files serve, stable-ABI files included.
  function torchesServed(files) {
    return data.torches.filter(function (t) { return files.some(function (f) { return torchFits(f, t); }); });
  }

  // Whether a file's kernels run on the picked GPU; no GPU picked, or a file whose targets
  // are unknown, is not judged (as which.py does).
  function runsOn(f, gpu) {
    if (!gpu || !f.targets.length) return true;
    return has(data.runs_on[f.targets.join(",")] || [], gpu);
  }

  // The same tuple as which._not_covered's distance(): torch minors apart (a newer one wins
  // a tie), then CUDA apart (a newer one wins a tie).
  function distance(f, torch, cuda) {
    var t = f.torch === "abi" ? vt(torch) : vt(f.torch), w = vt(torch);
    var c = vt(f.cuda), wc = vt(cuda);
    return [t[0] === w[0] ? Math.abs(t[1] - w[1]) : 99, cmp(t.join("."), w.join(".")) < 0 ? 1 : 0,
            Math.abs((c[0] - wc[0]) * 10 + (c[1] - wc[1])), cmp(c.join("."), wc.join(".")) < 0 ? 1 : 0];
  }
  function lessTuple(a, b) {
    for (var i = 0; i < a.length; i++) { if (a[i] !== b[i]) return a[i] < b[i]; }
    return false;
  }

  // The covered setup nearest to s among `compatible`: its commands and a sentence.
  function nearest(compatible, s) {
    var near = compatible[0], nd = distance(near, s.torch, s.cuda);
    compatible.forEach(function (f) {
      var d = distance(f, s.torch, s.cuda);
      if (lessTuple(d, nd)) { near = f; nd = d; }
    });
    var torch = near.torch === "abi" ? s.torch : near.torch;
    var url = viewUrl(near.cuda, near.torch);
    var c = commands(s.project, url);
    var what = "torch " + torch + " with CUDA " + near.cuda;
    return { ok: false, pip: c.pip, portable: c.portable, uv: c.uv, url: url, nearest: what,
             fix: "nearest is " + what + ": " + torchCommand(torch, near.cuda) + ", then: " + c.pip };
  }

  function problem(text, extra) {
    var a = extra || { ok: false };
    a.problem = text;
    return a;
  }

  // A wheel of exactly this setup runs here: the command for its strict view.
  function covered(s, best) {
    // a stable-ABI wheel checked against this torch is in its strict view: same command
    var inView = best.torch !== "abi" || has(best.covers || [], s.torch);
    var url = viewUrl(s.cuda, inView ? s.torch : "abi");
    var c = commands(s.project, url);
    return { ok: true, pip: c.pip, portable: c.portable, uv: c.uv, url: url, wheel: best.file,
             targets: best.targets };
  }

  function newest(files) {
    return files.slice().sort(function (a, b) {
      return cmp(a.version, b.version) || ((a.torch !== "abi") - (b.torch !== "abi"));
    }).pop();
  }

  // The exact torch build has wheels for this OS and Python, but none runs on the GPU.
  function gpuMisfit(s, fitting, compatible) {
    var g = gpuByKey[s.gpu];
    var targets = uniq(flat(fitting.map(function (f) { return f.targets; })));
    var text = "the " + s.project + " wheels for torch " + s.torch + " with CUDA " + s.cuda +
               " have no kernels for the " + g.short + " (compute capability " + g.capability +
               "; their GPU targets: " + targets.join(", ") + ")";
    if (!compatible.length) return problem(text);
    var n = nearest(compatible, s);
    return problem(text + ": " + n.fix, n);
  }

  // Exact torch build covered, but not for this OS or Python (which._not_covered).
  function platformOrPython(s, exact, here) {
    var platOk = exact.filter(function (f) { return has(f.platforms, s.platform); });
    if (!platOk.length) {
      var covered = uniq(flat(exact.map(function (f) { return f.platforms; })))
        .map(function (p) { return platformLabel[p] || p; });
      return problem("no " + s.project + " wheels for " + platformLabel[s.platform] + " with " + here +
                     " yet (covered: " + covered.join(", ") + "): open an issue to ask for this platform");
    }
    var pys = uniq(flat(platOk.map(function (f) { return f.pythons; })));
    var ft = /t$/.test(s.python) ? " (free-threaded)" : "";
    return problem("no " + s.project + " wheels for Python " + s.python + ft + " with " + here +
                   " yet (covered Pythons: " + pys.join(", ") +
                   "): use one of those Pythons in a new virtual environment, or open an issue to ask for this one");
  }

  // Another torch or CUDA: which part is not covered, and the nearest setup that is.
  function otherTorch(s, compatible, here) {
    var covTorch = torchesServed(compatible);
    var what;
    if (has(covTorch, s.torch)) {
      var cudas = uniq(compatible.filter(function (f) { return torchFits(f, s.torch); })
        .map(function (f) { return f.cuda; })).sort(cmp);
      what = "no " + s.project + " wheels for " + here + " (torch " + s.torch + " is covered with CUDA " + cudas.join(", ") + ")";
    } else if (covTorch.length && cmp(s.torch, covTorch[covTorch.length - 1]) > 0) {
      what = "no " + s.project + " wheels for torch " + s.torch + " yet";
    } else {
      what = "no " + s.project + " wheels for torch " + s.torch;
    }
    var n = nearest(compatible, s);
    return problem(what + ": " + n.fix, n);
  }

  // No wheels at all for this OS (of any package, or of this one): said plainly, with no
  // command, and the OS stays the visitor's.
  function noWheelsFor(s, files) {
    var os = platformLabel[s.platform];
    var here = function (list) { return list.filter(function (f) { return has(f.platforms, s.platform); }); };
    var elsewhere = function (list) {  // in the selector's order
      var keys = flat(list.map(function (f) { return f.platforms; }));
      return data.platforms.filter(function (p) { return has(keys, p[0]); }).map(function (p) { return p[1]; });
    };
    if (!here(data.files).length) {
      return problem("", { ok: false, verdict: "No " + os + " wheels are published yet: this index has wheels for " +
        elsewhere(data.files).join(", ") + " only. Open an issue to ask for " + os + " wheels." });
    }
    if (!here(files).length) {
      return problem("", { ok: false, verdict: "No " + s.project + " wheels for " + os + " are published yet (" +
        s.project + " has wheels for " + elsewhere(files).join(", ") + "). Open an issue to ask for them." });
    }
    return null;
  }

  function advise(s) {
    var files = data.files.filter(function (f) { return f.project === s.project; });
    var here = "torch " + s.torch + " (CUDA " + s.cuda + ")";
    if (!files.length) return problem("this index has no wheels of '" + s.project + "'");
    var gpuProblem = s.gpu && (data.gpu_problems[s.project] || {})[s.gpu];
    if (gpuProblem) return problem(gpuProblem);
    var noOs = noWheelsFor(s, files);
    if (noOs) return noOs;
    var fits = function (f) { return has(f.platforms, s.platform) && has(f.pythons, s.python); };
    var compatible = files.filter(function (f) { return fits(f) && runsOn(f, s.gpu); });
    var exact = files.filter(function (f) { return f.cuda === s.cuda && torchFits(f, s.torch); });
    var fitting = exact.filter(fits);
    var runnable = fitting.filter(function (f) { return runsOn(f, s.gpu); });
    if (runnable.length) return covered(s, newest(runnable));
    if (fitting.length) return gpuMisfit(s, fitting, compatible);
    if (exact.length) return platformOrPython(s, exact, here);
    if (!compatible.length) {
      return problem("no " + s.project + " wheels fit this platform and Python yet: " +
                     "open an issue to ask for this setup");
    }
    return otherTorch(s, compatible, here);
  }

  // What the picked GPU is, and which CUDA (torch) of this package run on it on this OS.
  function gpuNote(s) {
    var g = gpuByKey[s.gpu];
    if (!g) return "";
    var text = "The " + g.short + " is compute capability " + g.capability + ". ";
    var files = data.files.filter(function (f) {
      return f.project === s.project && has(f.platforms, s.platform) && runsOn(f, s.gpu);
    });
    if (!files.length) return text + "No " + s.project + " wheels for " + platformLabel[s.platform] + " run on it.";
    var cudas = uniq(files.map(function (f) { return f.cuda; })).sort(cmp);
    var served = torchRanges(torchesServed(files));
    var abi = files.filter(function (f) { return f.torch === "abi"; });
    var floors = uniq(abi.map(function (f) { return f.floor || data.torches[0]; })).sort(cmp);
    var stable = abi.length ? "; stable-ABI wheels serve torch " + floors[0] + " and later" : "";
    return text + s.project + " wheels for " + platformLabel[s.platform] + " that run on it: CUDA " +
           cudas.join(", ") + (served ? " (torch " + served + stable + ")" : "") + ".";
  }

  // "2.6 to 2.9, 2.12": runs of consecutive minors (sorted input).
  function torchRanges(torches) {
    var runs = [];
    torches.forEach(function (t) {
      var last = runs[runs.length - 1], a = last && vt(last[last.length - 1]), b = vt(t);
      if (a && a[0] === b[0] && a[1] + 1 === b[1]) last.push(t); else runs.push([t]);
    });
    return runs.map(function (r) { return r[0] + (r.length > 1 ? " to " + r[r.length - 1] : ""); }).join(", ");
  }

  function fill(select, values, labels) {
    select.textContent = "";
    values.forEach(function (v, i) {
      var o = document.createElement("option");
      o.value = v;
      o.textContent = labels ? labels[i] : v;
      select.appendChild(o);
    });
  }

  function uvToml(project, url, cuda, torch) {
    var name = "wheelfactory-" + cudaTag(cuda) + "-torch" + torch;
    return "[[tool.uv.index]]\nname = \"" + name + "\"\nurl = \"" + url + "\"\nexplicit = true\n\n" +
           "[tool.uv.sources]\n" + project + " = { index = \"" + name + "\" }";
  }

  function state() {
    var s = {};
    FIELDS.forEach(function (k) { s[k] = $("sel-" + k).value; });
    return s;
  }

  function showCommands(s, a) {
    $("commands").hidden = !a.pip;
    $("cmd-pip").textContent = a.pip || "";
    $("cmd-portable").textContent = a.portable || "";
    $("cmd-uv").textContent = a.uv || "";
    // ComfyUI portable exists on Windows only.
    $("portable").hidden = !a.pip || s.platform.indexOf("windows") !== 0;
    if (a.pip) {
      var m = a.url.match(/\/(cu\d+)\/torch([^/]+)\/simple\/$/);
      var cuda = m ? m[1].slice(2, -1) + "." + m[1].slice(-1) : s.cuda;
      $("cmd-uv-toml").textContent = uvToml(s.project, a.url, cuda, m ? m[2] : s.torch);
    }
  }

  function detail(s, a) {
    if (a.ok) {
      var g = gpuByKey[s.gpu];
      return "Installs " + a.wheel + (a.targets && a.targets.length ? "; GPU kernels for " +
             a.targets.join(", ") : "") + (g && a.targets.length ? ", which run on the " + g.short : "") + ".";
    }
    return a.pip ? "The commands above are for the nearest covered setup, " + a.nearest + "." : "";
  }

  // When the chosen package is not offered for this setup, the package of the index that is
  // (sageattention where sageattn3 needs a Blackwell GPU or another torch), as which.py's
  // "This works on this machine instead".
  function instead(s, a) {
    if (a.ok || a.pip) return null;
    var others = data.projects.filter(function (p) { return p !== s.project; });
    for (var i = 0; i < others.length; i++) {
      var t = Object.assign({}, s, { project: others[i] });
      var b = advise(t);
      if (b.ok) return { project: others[i], advice: b, state: t };
    }
    return null;
  }

  function render() {
    var s = state();
    var a = advise(s);
    var box = $("result");
    box.className = "result " + (a.ok ? "ok" : "problem");
    $("verdict").textContent = a.verdict || (a.ok ? "This setup is covered." : "Not covered: " + a.problem);
    var note = gpuNote(s);
    $("gpu-note").hidden = !note;
    $("gpu-note").textContent = note;
    var alt = instead(s, a);
    showCommands(alt ? alt.state : s, alt ? alt.advice : a);
    $("detail").textContent = alt ? "The commands above install " + alt.project +
      ", which runs on this setup instead." : detail(s, a);
    box.setAttribute("data-ok", a.ok ? "1" : "0");
    try { history.replaceState(null, "", "#" + new URLSearchParams(s).toString()); } catch (e) { /* file:// */ }
  }

  // ---------------------------------------------------------------- copy buttons

  function copyByHand(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  function flash(button, text) {
    button.textContent = text;
    setTimeout(function () { button.textContent = "Copy"; }, 1500);
  }

  // The Clipboard API where the page may use it (https, localhost); else the old way.
  function copy(button) {
    var text = $(button.getAttribute("data-copy")).textContent;
    var fallback = function () { flash(button, copyByHand(text) ? "Copied" : "Select and copy"); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(function () { flash(button, "Copied"); }, fallback);
    } else {
      fallback();
    }
  }

  // ---------------------------------------------------------------- coverage badges

  function fileItem(row) {
    var li = document.createElement("li");
    Array.prototype.forEach.call(row.cells[0].childNodes, function (n) { li.appendChild(n.cloneNode(true)); });
    var c = row.cells;
    var parts = [c[1].textContent, "built " + c[2].textContent,
                 c[3].textContent ? "GPU targets " + c[3].textContent : "", c[4].textContent];
    li.appendChild(document.createTextNode(" · " + parts.filter(Boolean).join(" · ")));
    Array.prototype.forEach.call(c[6].querySelectorAll("a"), function (a) {
      li.appendChild(document.createTextNode(" · "));
      li.appendChild(a.cloneNode(true));
    });
    return li;
  }

  // The setup a badge stands for, where the selector offers it.
  function badgeSetup(badge) {
    var td = badge.closest("td"), tr = td.parentNode, table = td.closest("table");
    var platform = table.tHead.rows[0].cells[td.cellIndex];
    var cudaCell = tr.querySelector("td[data-cuda]");
    return { project: table.getAttribute("data-project"), platform: platform.getAttribute("data-platform"),
             // an abi3 badge ("3.9+") stands for every CPython from 3.9: take its lowest
             python: badge.textContent.replace(/\+$/, ""), torch: cudaCell.getAttribute("data-torch"),
             cuda: cudaCell.getAttribute("data-cuda") };
  }

  function useSetup(setup) {
    FIELDS.forEach(function (k) {
      var sel = $("sel-" + k), v = setup[k];
      if (v && Array.prototype.some.call(sel.options, function (o) { return o.value === v; })) sel.value = v;
    });
    render();
    $("install").scrollIntoView();
  }

  // A tap on a badge lists its files under its row (tap again to close).
  function showBadge(badge) {
    var tr = badge.closest("tr");
    var open = tr.nextElementSibling;
    if (open && open.className === "cell-files") {
      open.parentNode.removeChild(open);
      if (open.badge === badge) return;
    }
    var row = document.createElement("tr");
    row.className = "cell-files";
    row.badge = badge;
    var td = document.createElement("td");
    td.colSpan = badge.closest("table").tHead.rows[0].cells.length;
    var list = document.createElement("ul");
    badge.getAttribute("data-f").split(" ").forEach(function (n) {
      var fileRow = $("f" + n);
      if (fileRow) list.appendChild(fileItem(fileRow));
    });
    var use = document.createElement("button");
    use.type = "button";
    use.textContent = "Show the install command for this setup";
    var setup = badgeSetup(badge);
    use.addEventListener("click", function () { useSetup(setup); });
    td.appendChild(list);
    td.appendChild(use);
    row.appendChild(td);
    tr.parentNode.insertBefore(row, tr.nextSibling);
  }

  // ---------------------------------------------------------------- start

  // The OS of this browser: Windows, else Linux x86_64 (aarch64 only when the browser says so).
  function browserPlatform() {
    var ua = navigator.userAgent || "";
    var hint = (navigator.userAgentData && navigator.userAgentData.platform) || "";
    if (/windows/i.test(hint + " " + ua)) return "windows-amd64";
    if (/aarch64|arm64/i.test(ua)) return "linux-aarch64";
    return "linux-x86_64";
  }

  function choose(key, value) {
    var sel = $("sel-" + key);
    if (value !== null && Array.prototype.some.call(sel.options, function (o) { return o.value === value; })) {
      sel.value = value;
    }
  }

  function init() {
    fill($("sel-project"), data.projects);
    fill($("sel-platform"), data.platforms.map(function (p) { return p[0]; }),
         data.platforms.map(function (p) { return p[1]; }));
    data.gpus.forEach(function (g) {
      var o = document.createElement("option");
      o.value = g.key;
      o.textContent = g.name;
      $("sel-gpu").appendChild(o);
    });
    fill($("sel-python"), data.pythons);
    var torches = data.torches.slice().reverse();
    fill($("sel-torch"), torches);
    fill($("sel-cuda"), data.cudas.slice().reverse());
    // Defaults: this browser's OS (kept even when it has no wheels) and a setup covered
    // there (landing.default_setups); an OS without wheels: the newest torch, its newest
    // CUDA, Python 3.12.
    var platform = browserPlatform();
    choose("platform", platform);
    var newestFiles = data.files.filter(function (f) { return f.torch === torches[0]; });
    var start = data.defaults[platform] || { python: "3.12",
      cuda: newestFiles.map(function (f) { return f.cuda; }).sort(cmp).pop() || null };
    FIELDS.forEach(function (k) { if (k !== "platform" && start[k]) choose(k, start[k]); });
    // A shared link (#project=...&python=...) selects its setup.
    var params = new URLSearchParams(location.hash.slice(1));
    FIELDS.forEach(function (k) { choose(k, params.get(k)); });
    $("selector").addEventListener("change", render);
    Array.prototype.forEach.call(document.querySelectorAll("button.copy"), function (b) {
      b.addEventListener("click", function () { copy(b); });
    });
    $("coverage").addEventListener("click", function (e) {
      var badge = e.target.closest && e.target.closest("a.py");
      if (!badge) return;
      e.preventDefault();
      showBadge(badge);
    });
    render();
  }
  if (!data.files.length) {
    $("verdict").textContent = "No wheels are published yet.";
    $("commands").hidden = true;
    return;
  }
  init();
})();
