// The landing page's selector: pick a setup, see the command. Data: the JSON in #wf-data,
// rendered by wheelfactory/landing.py from the index's manifest. The decision mirrors
// which.advise() (wheelfactory/which.py) for a machine with that setup; which files fit
// which OS and Python was decided by which.py's rules at render time.
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
  var platformLabel = {};
  data.platforms.forEach(function (p) { platformLabel[p[0]] = p[1]; });

  function vt(text) { return (String(text).split("+")[0].match(/\d+/g) || []).map(Number); }
  function cmp(a, b) {
    var x = vt(a), y = vt(b);
    for (var i = 0; i < Math.max(x.length, y.length); i++) {
      var d = (x[i] || 0) - (y[i] || 0);
      if (d) return d < 0 ? -1 : 1;
    }
    return 0;
  }
  function cudaTag(cuda) { var p = cuda.split("."); return "cu" + parseInt(p[0], 10) + parseInt(p[1], 10); }
  function viewUrl(cuda, torch) { return data.root + "/" + cudaTag(cuda) + "/torch" + torch + "/simple/"; }
  function commands(project, url) {
    return { pip: "pip install " + project + " --extra-index-url " + url,
             uv: "uv pip install " + project + " --extra-index-url " + url };
  }
  function torchCommand(torch, cuda) {
    return "pip install 'torch==" + torch + ".*' --index-url " + data.pytorch_index + "/" + cudaTag(cuda);
  }
  function has(list, x) { return list.indexOf(x) >= 0; }
  function uniq(list) { return list.filter(function (x, i) { return list.indexOf(x) === i; }); }

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

  function advise(s) {
    var files = data.files.filter(function (f) { return f.project === s.project; });
    var here = "torch " + s.torch + " (CUDA " + s.cuda + ")";
    if (!files.length) return { ok: false, problem: "this index has no wheels of '" + s.project + "'" };
    var torchFits = function (f) {
      return f.torch === "abi" ? (!f.floor || cmp(s.torch, f.floor) >= 0) : f.torch === s.torch;
    };
    var fits = function (f) { return has(f.platforms, s.platform) && has(f.pythons, s.python); };
    var exact = files.filter(function (f) { return f.cuda === s.cuda && torchFits(f); });
    var fitting = exact.filter(fits);
    if (fitting.length) {
      fitting.sort(function (a, b) {
        return cmp(a.version, b.version) || ((a.torch !== "abi") - (b.torch !== "abi"));
      });
      var best = fitting[fitting.length - 1];
      // a stable-ABI wheel checked against this torch is in its strict view: same command
      var inView = best.torch !== "abi" || has(best.covers || [], s.torch);
      var url = viewUrl(s.cuda, inView ? s.torch : "abi");
      var c = commands(s.project, url);
      return { ok: true, pip: c.pip, uv: c.uv, url: url, wheel: best.file, targets: best.targets };
    }
    if (exact.length) {
      var platOk = exact.filter(function (f) { return has(f.platforms, s.platform); });
      if (!platOk.length) {
        var covered = uniq([].concat.apply([], exact.map(function (f) { return f.platforms; })))
          .map(function (p) { return platformLabel[p] || p; });
        return { ok: false, problem: "no " + s.project + " wheels for " + platformLabel[s.platform] +
                 " with " + here + " yet (covered: " + covered.join(", ") +
                 "): open an issue to ask for this platform" };
      }
      var pys = uniq([].concat.apply([], platOk.map(function (f) { return f.pythons; })));
      var ft = /t$/.test(s.python) ? " (free-threaded)" : "";
      return { ok: false, problem: "no " + s.project + " wheels for Python " + s.python + ft + " with " +
               here + " yet (covered Pythons: " + pys.join(", ") +
               "): use one of those Pythons in a new virtual environment, or open an issue to ask for this one" };
    }
    var compatible = files.filter(fits);
    if (!compatible.length) {
      return { ok: false, problem: "no " + s.project + " wheels fit this platform and Python yet: " +
               "open an issue to ask for this setup" };
    }
    var near = compatible[0], nd = distance(near, s.torch, s.cuda);
    compatible.forEach(function (f) {
      var d = distance(f, s.torch, s.cuda);
      if (lessTuple(d, nd)) { near = f; nd = d; }
    });
    var nearTorch = near.torch === "abi" ? s.torch : near.torch;
    var nurl = viewUrl(near.cuda, near.torch);
    var nc = commands(s.project, nurl);
    var what;
    var covTorch = uniq(compatible.filter(function (f) { return f.torch !== "abi"; })
      .map(function (f) { return f.torch; })).sort(cmp);
    if (has(covTorch, s.torch)) {
      var cudas = uniq(compatible.filter(function (f) { return f.torch === s.torch; })
        .map(function (f) { return f.cuda; })).sort(cmp);
      what = "no " + s.project + " wheels for " + here + " (torch " + s.torch + " is covered with CUDA " + cudas.join(", ") + ")";
    } else if (covTorch.length && cmp(s.torch, covTorch[covTorch.length - 1]) > 0) {
      what = "no " + s.project + " wheels for torch " + s.torch + " yet";
    } else {
      what = "no " + s.project + " wheels for torch " + s.torch;
    }
    return { ok: false, pip: nc.pip, uv: nc.uv, url: nurl, nearest: "torch " + nearTorch + " with CUDA " + near.cuda,
             problem: what + ": nearest is torch " + nearTorch + " with CUDA " + near.cuda + ": " +
                      torchCommand(nearTorch, near.cuda) + ", then: " + nc.pip };
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
    return { project: $("sel-project").value, platform: $("sel-platform").value,
             python: $("sel-python").value, torch: $("sel-torch").value, cuda: $("sel-cuda").value };
  }

  function render() {
    var s = state();
    var a = advise(s);
    var box = $("result");
    box.className = "result " + (a.ok ? "ok" : "problem");
    $("verdict").textContent = a.ok ? "This setup is covered." : "Not covered: " + a.problem;
    $("commands").hidden = !a.pip;
    $("cmd-pip").textContent = a.pip || "";
    $("cmd-uv").textContent = a.uv || "";
    if (a.pip) {
      var m = a.url.match(/\/(cu\d+)\/torch([^/]+)\/simple\/$/);
      var cuda = m ? m[1].slice(2, -1) + "." + m[1].slice(-1) : s.cuda;
      $("cmd-uv-toml").textContent = uvToml(s.project, a.url, cuda, m ? m[2] : s.torch);
    }
    var detail = "";
    if (a.ok) {
      detail = "Installs " + a.wheel + (a.targets && a.targets.length ? "; GPU kernels for " +
               a.targets.join(", ") : "") + ".";
    } else if (a.pip) {
      detail = "The commands above are for the nearest covered setup, " + a.nearest + ".";
    }
    $("detail").textContent = detail;
    box.setAttribute("data-ok", a.ok ? "1" : "0");
    try { history.replaceState(null, "", "#" + new URLSearchParams(s).toString()); } catch (e) { /* file:// */ }
  }

  function init() {
    fill($("sel-project"), data.projects);
    fill($("sel-platform"), data.platforms.map(function (p) { return p[0]; }),
         data.platforms.map(function (p) { return p[1]; }));
    fill($("sel-python"), data.pythons);
    var torches = data.torches.slice().reverse();
    fill($("sel-torch"), torches);
    fill($("sel-cuda"), data.cudas.slice().reverse());
    // Defaults: the newest torch and its newest CUDA, Linux x86_64, Python 3.12 when covered.
    var newest = data.files.filter(function (f) { return f.torch === torches[0]; });
    var cudaDefault = newest.map(function (f) { return f.cuda; }).sort(cmp).pop();
    if (cudaDefault) $("sel-cuda").value = cudaDefault;
    if (has(data.pythons, "3.12")) $("sel-python").value = "3.12";
    // A shared link (#project=...&python=...) selects its setup.
    var params = new URLSearchParams(location.hash.slice(1));
    ["project", "platform", "python", "torch", "cuda"].forEach(function (k) {
      var sel = $("sel-" + k), v = params.get(k);
      if (v !== null && Array.prototype.some.call(sel.options, function (o) { return o.value === v; })) sel.value = v;
    });
    $("selector").addEventListener("change", render);
    render();
  }
  if (!data.files.length) {
    $("verdict").textContent = "No wheels are published yet.";
    $("commands").hidden = true;
    return;
  }
  init();
})();
