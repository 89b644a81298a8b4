// bottomup annotate: the page. Plain JS, no build step, no external resources.
//
// Model (all at the image's full resolution, row-major, index = row * W + col):
//   seeds   Uint8Array   the scribbles, 0 = none, 1..K = label (what POST /segment receives)
//   labels  Uint16Array  the segmentation the server returned (0 before the first answer)
//   edgeH   Float32Array (H, W-1) ucm2 level of the boundary between (r, c) and (r, c+1)
//   edgeV   Float32Array (H-1, W) ucm2 level of the boundary between (r, c) and (r+1, c)
// A stroke is a polyline of points in image coordinates (x = col, y = row, pixel (r, c) covers
// [c, c+1) x [r, r+1)) with a radius in image pixels; it paints every pixel whose centre
// (c + 0.5, r + 0.5) lies within the radius of the polyline (see paintSegment).
"use strict";

(() => {
  const PALETTE = [
    [0, 0, 0], [230, 57, 70], [69, 123, 235], [82, 183, 96], [244, 197, 66], [186, 85, 211],
    [64, 200, 210], [245, 130, 48], [150, 110, 70], [250, 140, 190], [150, 150, 150],
  ];
  const $ = (id) => document.getElementById(id);
  const api = (name, what) => `api/images/${encodeURIComponent(name)}/${what}`;

  const S = {
    images: [], name: null, token: 0, W: 0, H: 0, scale: 1,
    seeds: null, labels: null, edgeH: null, edgeV: null, levels: [0], level: 0,
    tool: "brush", label: 1, nLabels: 9, labelNames: [],
    history: [], future: [], strokes: [], current: null,
    segCount: 0, segInFlight: null, segDirty: false, segmented: false,
    dirty: false, ready: false, lastSeedsPNG: null, lastSegmentMs: null,
  };
  window.annotate = S; // for scripts and the browser test

  // ---------------------------------------------------------------------------------------------
  // PNG (8-bit gray out; 8/16-bit gray in) and NPZ, with the browser's own (de)compression streams
  const CRC = (() => {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      t[n] = c >>> 0;
    }
    return t;
  })();
  function crc32(bytes) {
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) c = CRC[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }
  async function pipe(bytes, stream) {
    const out = new Response(new Blob([bytes]).stream().pipeThrough(stream));
    return new Uint8Array(await out.arrayBuffer());
  }
  const deflate = (b) => pipe(b, new CompressionStream("deflate"));
  const inflate = (b) => pipe(b, new DecompressionStream("deflate"));
  const inflateRaw = (b) => pipe(b, new DecompressionStream("deflate-raw"));

  async function encodeGray8PNG(data, w, h) {
    const raw = new Uint8Array(h * (w + 1));
    for (let y = 0; y < h; y++) raw.set(data.subarray(y * w, (y + 1) * w), y * (w + 1) + 1);
    const idat = await deflate(raw);
    const chunk = (type, body) => {
      const out = new Uint8Array(12 + body.length);
      const dv = new DataView(out.buffer);
      dv.setUint32(0, body.length);
      for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
      out.set(body, 8);
      dv.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
      return out;
    };
    const ihdr = new Uint8Array(13);
    const dv = new DataView(ihdr.buffer);
    dv.setUint32(0, w); dv.setUint32(4, h);
    ihdr[8] = 8; ihdr[9] = 0; // bit depth 8, gray; compression, filter, interlace 0
    const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr),
      chunk("IDAT", idat), chunk("IEND", new Uint8Array(0))];
    return new Blob(parts, { type: "image/png" });
  }

  async function decodeGrayPNG(buf) {
    const b = new Uint8Array(buf);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let p = 8, w = 0, h = 0, depth = 0, ctype = 0, interlace = 0;
    const idat = [];
    while (p < b.length) {
      const len = dv.getUint32(p);
      const type = String.fromCharCode(b[p + 4], b[p + 5], b[p + 6], b[p + 7]);
      if (type === "IHDR") {
        w = dv.getUint32(p + 8); h = dv.getUint32(p + 12);
        depth = b[p + 16]; ctype = b[p + 17]; interlace = b[p + 20];
      } else if (type === "IDAT") idat.push(b.subarray(p + 8, p + 8 + len));
      else if (type === "IEND") break;
      p += 12 + len;
    }
    if (ctype !== 0 || interlace !== 0 || (depth !== 8 && depth !== 16)) {
      throw new Error(`unsupported PNG (color type ${ctype}, depth ${depth})`);
    }
    const raw = await inflate(new Blob(idat));
    const bpp = depth / 8, stride = w * bpp;
    const px = new Uint8Array(h * stride);
    for (let y = 0; y < h; y++) {
      const f = raw[y * (stride + 1)];
      const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
      const row = px.subarray(y * stride, (y + 1) * stride);
      const up = y > 0 ? px.subarray((y - 1) * stride, y * stride) : null;
      for (let i = 0; i < stride; i++) {
        const a = i >= bpp ? row[i - bpp] : 0;
        const u = up ? up[i] : 0;
        const c = up && i >= bpp ? up[i - bpp] : 0;
        let v = src[i];
        if (f === 1) v += a;
        else if (f === 2) v += u;
        else if (f === 3) v += (a + u) >> 1;
        else if (f === 4) {
          const pp = a + u - c, pa = Math.abs(pp - a), pb = Math.abs(pp - u), pc = Math.abs(pp - c);
          v += pa <= pb && pa <= pc ? a : pb <= pc ? u : c;
        }
        row[i] = v & 0xff;
      }
    }
    const out = new Uint16Array(w * h);
    if (depth === 8) out.set(px);
    else for (let i = 0; i < w * h; i++) out[i] = (px[2 * i] << 8) | px[2 * i + 1];
    return { w, h, data: out };
  }

  async function readNpz(buf, key) {
    // the zip written by numpy.savez_compressed: local headers (zip64 extra fields), deflate
    const b = new Uint8Array(buf);
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let p = 0;
    while (p + 30 <= b.length && dv.getUint32(p, true) === 0x04034b50) {
      const method = dv.getUint16(p + 8, true);
      let csize = dv.getUint32(p + 18, true);
      const nlen = dv.getUint16(p + 26, true), xlen = dv.getUint16(p + 28, true);
      const name = new TextDecoder().decode(b.subarray(p + 30, p + 30 + nlen));
      let x = p + 30 + nlen;
      const xend = x + xlen;
      while (x + 4 <= xend) { // zip64: original then compressed size, 8 bytes each
        const id = dv.getUint16(x, true), sz = dv.getUint16(x + 2, true);
        if (id === 1 && csize === 0xffffffff) csize = Number(dv.getBigUint64(x + 12, true));
        x += 4 + sz;
      }
      const data = b.subarray(xend, xend + csize);
      if (name === key + ".npy") return parseNpy(method === 8 ? await inflateRaw(data) : data);
      p = xend + csize;
    }
    throw new Error(`no ${key}.npy in the npz`);
  }

  function parseNpy(b) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const major = b[6];
    const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
    const off = (major === 1 ? 10 : 12);
    const header = new TextDecoder().decode(b.subarray(off, off + hlen));
    const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
    const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(",").filter((s) => s.trim()).map(Number);
    if (/'fortran_order':\s*True/.test(header)) throw new Error("fortran-order npy");
    if (descr !== "<f8") throw new Error(`expected <f8, got ${descr}`);
    const bytes = b.slice(off + hlen); // copy: aligned for Float64Array
    return { shape, data: new Float64Array(bytes.buffer, 0, bytes.length / 8) };
  }

  // ---------------------------------------------------------------------------------------------
  // UI helpers
  function setStatus(text, error = false) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", error);
  }
  function setDirty(d) { S.dirty = d; $("dirty").hidden = !d; }
  async function jsonError(r) {
    try { return (await r.json()).error || r.statusText; } catch (e) { return r.statusText; }
  }
  function colour(k) { return PALETTE[((k - 1) % (PALETTE.length - 1)) + 1]; }

  function buildPalette() {
    const el = $("palette");
    el.innerHTML = "";
    for (let k = 1; k <= S.nLabels; k++) {
      const btn = document.createElement("button");
      btn.className = "swatch" + (k === S.label ? " active" : "");
      const [r, g, b] = colour(k);
      btn.style.background = `rgb(${r},${g},${b})`;
      btn.textContent = k <= 9 ? String(k) : "";
      btn.title = (S.labelNames[k - 1] || `label ${k}`) + (k <= 9 ? ` (${k})` : "");
      btn.dataset.label = String(k);
      btn.onclick = () => setLabel(k);
      el.appendChild(btn);
    }
  }
  function setLabel(k) {
    S.label = k;
    if (S.tool === "eraser") setTool("brush");
    for (const b of document.querySelectorAll("#palette .swatch")) {
      b.classList.toggle("active", Number(b.dataset.label) === k);
    }
  }
  function setTool(t) {
    S.tool = t;
    for (const b of document.querySelectorAll("[data-tool]")) b.classList.toggle("active", b.dataset.tool === t);
  }

  // ---------------------------------------------------------------------------------------------
  // Image list and loading
  async function loadList() {
    const r = await fetch("api/images?details=1");
    S.images = await r.json();
    const ul = $("images");
    ul.innerHTML = "";
    for (const im of S.images) {
      const li = document.createElement("li");
      li.dataset.name = im.name;
      li.innerHTML = '<span class="name"></span><span class="mark"></span>';
      li.querySelector(".name").textContent = im.name;
      li.title = im.name;
      li.onclick = () => openImage(im.name);
      ul.appendChild(li);
      markImage(im.name, im.annotated ? "saved" : im.hierarchy === "computing" ? "computing" : "");
    }
  }
  function markImage(name, kind) {
    const li = document.querySelector(`#images li[data-name="${CSS.escape(name)}"]`);
    if (!li) return;
    const m = li.querySelector(".mark");
    m.textContent = kind === "saved" ? "\u2713" : kind === "computing" ? "\u2026" : "";
    m.className = "mark " + kind;
  }

  function fitViewer() {
    if (!S.W) return;
    const stage = $("stage");
    // fit the stage: large images shown downscaled, small ones enlarged up to 3x
    const s = Math.min(3, (stage.clientWidth - 24) / S.W, (stage.clientHeight - 24) / S.H);
    S.scale = s > 0 ? s : 1;
    const v = $("viewer");
    v.style.width = `${Math.round(S.W * S.scale)}px`;
    v.style.height = `${Math.round(S.H * S.scale)}px`;
    const small = S.scale < 1;
    for (const id of ["mask", "boundaries", "scribbles"]) $(id).style.imageRendering = small ? "auto" : "pixelated";
  }

  async function openImage(name) {
    if (S.name === name) return;
    if (S.dirty && S.name) await save();
    const token = ++S.token;
    S.name = name; S.ready = false; S.segmented = false; S.segCount = 0;
    S.edgeH = S.edgeV = null; S.levels = [0];
    S.history = []; S.future = []; S.strokes = [];
    setDirty(false);
    for (const li of document.querySelectorAll("#images li")) li.classList.toggle("active", li.dataset.name === name);
    history.replaceState(null, "", "#" + encodeURIComponent(name));
    $("empty").hidden = true;
    const img = $("photo");
    img.src = api(name, "image");
    try { await img.decode(); } catch (e) { setStatus(`cannot show ${name}: ${e}`, true); return; }
    if (token !== S.token) return;
    S.W = img.naturalWidth; S.H = img.naturalHeight;
    for (const id of ["mask", "boundaries", "scribbles"]) { $(id).width = S.W; $(id).height = S.H; }
    S.seeds = new Uint8Array(S.W * S.H);
    S.labels = new Uint16Array(S.W * S.H);
    $("viewer").hidden = false;
    fitViewer();
    clearCanvas("mask"); clearCanvas("boundaries"); clearCanvas("scribbles");
    $("info").textContent = `${name}: ${S.W} x ${S.H}` + (S.scale !== 1 ? ` (shown at ${Math.round(S.scale * 100)} %)` : "");
    await loadSaved(name, token);
    await loadHierarchy(name, token);
  }

  async function loadSaved(name, token) {
    const [a, s] = await Promise.all([fetch(api(name, "annotation")), fetch(api(name, "scribbles"))]);
    if (token !== S.token) return;
    if (s.ok) {
      const png = await decodeGrayPNG(await s.arrayBuffer());
      if (png.w === S.W && png.h === S.H) {
        for (let i = 0; i < S.seeds.length; i++) S.seeds[i] = png.data[i];
        renderScribbles();
      }
    }
    if (a.ok) {
      const png = await decodeGrayPNG(await a.arrayBuffer());
      if (png.w === S.W && png.h === S.H) {
        S.labels.set(png.data);
        S.segmented = true;
        renderMask();
        setStatus(`loaded the saved annotation of ${name}`);
      }
    }
  }

  async function loadHierarchy(name, token) {
    const box = $("progress"), bar = $("progress-bar");
    for (;;) {
      const r = await fetch(api(name, "ucm2.npz"));
      if (token !== S.token) return;
      if (r.status === 202) {
        const p = await r.json();
        box.hidden = false;
        $("progress-text").textContent = p.message;
        bar.classList.toggle("indeterminate", p.progress == null);
        if (p.progress != null) bar.style.width = `${Math.round(p.progress * 100)}%`;
        markImage(name, "computing");
        await new Promise((res) => setTimeout(res, 700));
        continue;
      }
      box.hidden = true;
      if (!r.ok) { setStatus(await jsonError(r), true); return; }
      const u = await readNpz(await r.arrayBuffer(), "ucm2");
      if (token !== S.token) return;
      setEdges(u);
      break;
    }
    const saved = S.images.find((im) => im.name === name);
    markImage(name, saved && saved.annotated ? "saved" : "");
    S.ready = true;
    setStatus(`hierarchy of ${name} ready: ${S.levels.length - 1} levels`);
    if (hasSeeds() && !S.segmented) requestSegment();
    // start the next image's hierarchy in the background
    const i = S.images.findIndex((im) => im.name === name);
    if (i >= 0 && i + 1 < S.images.length) fetch(api(S.images[i + 1].name, "ucm2.npz")).catch(() => {});
  }

  function setEdges(u) {
    const [hh, ww] = u.shape, W = S.W, H = S.H, d = u.data;
    if (hh !== 2 * H + 1 || ww !== 2 * W + 1) throw new Error("ucm2 does not match the image size");
    S.edgeH = new Float32Array(H * Math.max(W - 1, 0));
    S.edgeV = new Float32Array(Math.max(H - 1, 0) * W);
    for (let y = 0; y < H; y++) {
      const row = (2 * y + 1) * ww;
      for (let x = 0; x + 1 < W; x++) S.edgeH[y * (W - 1) + x] = d[row + 2 * x + 2];
    }
    for (let y = 0; y + 1 < H; y++) {
      const row = (2 * y + 2) * ww;
      for (let x = 0; x < W; x++) S.edgeV[y * W + x] = d[row + 2 * x + 1];
    }
    const vals = [];
    for (const arr of [S.edgeH, S.edgeV]) for (let i = 0; i < arr.length; i++) if (arr[i] > 0) vals.push(arr[i]);
    const sorted = Float32Array.from(vals).sort();
    const levels = [0];
    for (let i = 0; i < sorted.length; i++) if (sorted[i] !== levels[levels.length - 1]) levels.push(sorted[i]);
    S.levels = levels;
    const slider = $("level");
    slider.max = String(levels.length - 1);
    // start at the level where the boundaries of the coarser half of the merges remain
    slider.value = String(Math.floor((levels.length - 1) * 0.5));
    setLevel(Number(slider.value));
  }

  function setLevel(k) {
    k = Math.max(0, Math.min(S.levels.length - 1, k));
    $("level").value = String(k);
    S.level = S.levels[k];
    $("level-out").textContent = S.level.toFixed(3);
    renderBoundaries();
  }

  // ---------------------------------------------------------------------------------------------
  // Rendering
  function clearCanvas(id) { const c = $(id); c.getContext("2d").clearRect(0, 0, c.width, c.height); }
  function packed(rgb, a) { return ((a << 24) | (rgb[2] << 16) | (rgb[1] << 8) | rgb[0]) >>> 0; }

  function renderMask() {
    const c = $("mask"), ctx = c.getContext("2d");
    const img = ctx.createImageData(S.W, S.H);
    const px = new Uint32Array(img.data.buffer);
    const lut = new Uint32Array(65536);
    for (let k = 1; k < 65536 && k <= 4096; k++) lut[k] = packed(colour(k), 255);
    for (let i = 0; i < S.labels.length; i++) px[i] = lut[S.labels[i]];
    ctx.putImageData(img, 0, 0);
    c.style.opacity = String(Number($("opacity").value) / 100);
  }

  function renderBoundaries() {
    const c = $("boundaries"), ctx = c.getContext("2d");
    if (!S.edgeH || !$("show-boundaries").checked) { clearCanvas("boundaries"); return; }
    const W = S.W, H = S.H, t = S.level;
    const img = ctx.createImageData(W, H);
    const px = new Uint32Array(img.data.buffer);
    const on = packed([255, 255, 255], 230);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        if ((x + 1 < W && S.edgeH[y * (W - 1) + x] > t) || (y + 1 < H && S.edgeV[y * W + x] > t)) px[y * W + x] = on;
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  function renderScribbles(x0 = 0, y0 = 0, x1 = S.W, y1 = S.H) {
    x0 = Math.max(0, x0); y0 = Math.max(0, y0); x1 = Math.min(S.W, x1); y1 = Math.min(S.H, y1);
    if (x1 <= x0 || y1 <= y0) return;
    const w = x1 - x0, h = y1 - y0;
    const ctx = $("scribbles").getContext("2d");
    const img = ctx.createImageData(w, h);
    const px = new Uint32Array(img.data.buffer);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const k = S.seeds[(y + y0) * S.W + x + x0];
        if (k) px[y * w + x] = packed(colour(k), 255);
      }
    }
    ctx.putImageData(img, x0, y0);
  }

  // ---------------------------------------------------------------------------------------------
  // Painting: a disc of radius r swept along each segment, on pixel centres
  function paintSegment(ax, ay, bx, by, r, value, change) {
    const x0 = Math.max(0, Math.floor(Math.min(ax, bx) - r - 1)), x1 = Math.min(S.W - 1, Math.ceil(Math.max(ax, bx) + r + 1));
    const y0 = Math.max(0, Math.floor(Math.min(ay, by) - r - 1)), y1 = Math.min(S.H - 1, Math.ceil(Math.max(ay, by) + r + 1));
    const dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy, r2 = r * r;
    for (let y = y0; y <= y1; y++) {
      const py = y + 0.5;
      for (let x = x0; x <= x1; x++) {
        const qx = x + 0.5;
        let t = len2 > 0 ? ((qx - ax) * dx + (py - ay) * dy) / len2 : 0;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        const ex = ax + t * dx - qx, ey = ay + t * dy - py;
        if (ex * ex + ey * ey <= r2) {
          const i = y * S.W + x;
          if (S.seeds[i] !== value) {
            if (!change.has(i)) change.set(i, S.seeds[i]);
            S.seeds[i] = value;
          }
        }
      }
    }
    renderScribbles(x0, y0, x1 + 1, y1 + 1);
  }

  function toImage(ev) {
    const rect = $("scribbles").getBoundingClientRect();
    return [(ev.clientX - rect.left) * (S.W / rect.width), (ev.clientY - rect.top) * (S.H / rect.height)];
  }

  function commit(action) {
    if (!action.idx.length) return;
    S.history.push(action);
    S.future = [];
    setDirty(true);
    requestSegment();
  }
  function finish(change, value, extra) {
    const idx = Int32Array.from(change.keys());
    const old = Uint8Array.from(change.values());
    return Object.assign({ idx, old, value }, extra);
  }

  function regionFill(x, y, value) {
    // the region of the cut at the current level that holds pixel (row y, col x): pixels joined by
    // boundaries of level <= t (the connected components of ucm2 <= t)
    if (!S.edgeH) { setStatus("the hierarchy is not ready yet", true); return; }
    const W = S.W, H = S.H, t = S.level;
    const start = Math.floor(y) * W + Math.floor(x);
    const seen = new Uint8Array(W * H);
    const stack = [start];
    seen[start] = 1;
    const change = new Map();
    let minx = W, miny = H, maxx = 0, maxy = 0;
    while (stack.length) {
      const i = stack.pop();
      const r = (i / W) | 0, c = i - r * W;
      if (S.seeds[i] !== value) { change.set(i, S.seeds[i]); S.seeds[i] = value; }
      if (c < minx) minx = c; if (c > maxx) maxx = c; if (r < miny) miny = r; if (r > maxy) maxy = r;
      if (c + 1 < W && !seen[i + 1] && S.edgeH[r * (W - 1) + c] <= t) { seen[i + 1] = 1; stack.push(i + 1); }
      if (c > 0 && !seen[i - 1] && S.edgeH[r * (W - 1) + c - 1] <= t) { seen[i - 1] = 1; stack.push(i - 1); }
      if (r + 1 < H && !seen[i + W] && S.edgeV[r * W + c] <= t) { seen[i + W] = 1; stack.push(i + W); }
      if (r > 0 && !seen[i - W] && S.edgeV[(r - 1) * W + c] <= t) { seen[i - W] = 1; stack.push(i - W); }
    }
    renderScribbles(minx, miny, maxx + 1, maxy + 1);
    commit(finish(change, value, { kind: "region", x, y, level: t }));
  }

  function setupPointer() {
    const c = $("scribbles"), cursor = $("cursor");
    const radiusImg = () => Number($("brush-size").value) / S.scale;
    c.addEventListener("pointerdown", (ev) => {
      if (ev.button !== 0 || !S.seeds) return;
      ev.preventDefault();
      const [x, y] = toImage(ev);
      if (S.tool === "region" || ev.shiftKey) { regionFill(x, y, S.label); return; }
      c.setPointerCapture(ev.pointerId);
      const value = S.tool === "eraser" ? 0 : S.label;
      S.current = { value, radius: radiusImg(), points: [[x, y]], change: new Map() };
      paintSegment(x, y, x, y, S.current.radius, value, S.current.change);
    });
    c.addEventListener("pointermove", (ev) => {
      const rect = c.getBoundingClientRect();
      const r = Number($("brush-size").value);
      cursor.style.display = S.tool === "region" ? "none" : "block";
      cursor.style.width = cursor.style.height = `${2 * r}px`;
      cursor.style.left = `${ev.clientX - rect.left - r}px`;
      cursor.style.top = `${ev.clientY - rect.top - r}px`;
      c.style.cursor = S.tool === "region" ? "crosshair" : "none";
      if (!S.current) return;
      const [x, y] = toImage(ev);
      const [px, py] = S.current.points[S.current.points.length - 1];
      if (x === px && y === py) return;
      S.current.points.push([x, y]);
      paintSegment(px, py, x, y, S.current.radius, S.current.value, S.current.change);
    });
    const end = () => {
      if (!S.current) return;
      const s = S.current;
      S.current = null;
      S.strokes.push({ label: s.value, radius: s.radius, points: s.points });
      commit(finish(s.change, s.value, { kind: "stroke", stroke: S.strokes.length - 1 }));
    };
    c.addEventListener("pointerup", end);
    c.addEventListener("pointercancel", end);
    c.addEventListener("pointerleave", () => { cursor.style.display = "none"; });
  }

  function undo() {
    const a = S.history.pop();
    if (!a) return;
    for (let j = 0; j < a.idx.length; j++) S.seeds[a.idx[j]] = a.old[j];
    S.future.push(a);
    renderScribbles();
    setDirty(true);
    requestSegment();
  }
  function redo() {
    const a = S.future.pop();
    if (!a) return;
    for (let j = 0; j < a.idx.length; j++) S.seeds[a.idx[j]] = a.value;
    S.history.push(a);
    renderScribbles();
    setDirty(true);
    requestSegment();
  }
  function clearScribbles() {
    const change = new Map();
    for (let i = 0; i < S.seeds.length; i++) if (S.seeds[i]) { change.set(i, S.seeds[i]); S.seeds[i] = 0; }
    renderScribbles();
    commit(finish(change, 0, { kind: "clear" }));
  }

  // ---------------------------------------------------------------------------------------------
  // Segmentation: one request in flight; strokes made meanwhile are sent together afterwards
  function hasSeeds() { for (let i = 0; i < S.seeds.length; i++) if (S.seeds[i]) return true; return false; }

  function requestSegment() {
    if (S.segInFlight) { S.segDirty = true; return S.segInFlight; }
    S.segInFlight = (async () => {
      try {
        do {
          S.segDirty = false;
          await segmentOnce();
        } while (S.segDirty);
      } finally {
        S.segInFlight = null;
      }
    })();
    return S.segInFlight;
  }

  async function segmentOnce() {
    const name = S.name, token = S.token;
    if (!hasSeeds()) {
      S.labels.fill(0); S.segmented = false; renderMask();
      return;
    }
    if (!S.ready) { setStatus("scribbles kept; the segmentation follows when the hierarchy is ready"); return; }
    const blob = await encodeGray8PNG(S.seeds, S.W, S.H);
    S.lastSeedsPNG = blob;
    const t0 = performance.now();
    const r = await fetch(api(name, "segment"), { method: "POST", body: blob, headers: { "Content-Type": "image/png" } });
    if (token !== S.token) return;
    if (!r.ok) { setStatus(`segment: ${await jsonError(r)}`, true); return; }
    const png = await decodeGrayPNG(await r.arrayBuffer());
    if (token !== S.token) return;
    S.labels.set(png.data);
    S.segmented = true;
    S.segCount += 1;
    S.lastSegmentMs = performance.now() - t0;
    renderMask();
    setStatus(`segmented in ${Math.round(S.lastSegmentMs)} ms (request, labels and drawing)`);
  }

  // ---------------------------------------------------------------------------------------------
  // Save, reload, export
  async function labelsPNG() {
    let max = 0;
    for (let i = 0; i < S.labels.length; i++) if (S.labels[i] > max) max = S.labels[i];
    if (max > 255) throw new Error("more than 255 labels");
    return encodeGray8PNG(Uint8Array.from(S.labels), S.W, S.H);
  }
  async function save() {
    if (!S.name || !S.seeds) return false;
    if (S.segInFlight) await S.segInFlight;
    const name = S.name;
    const [labels, seeds] = [await labelsPNG(), await encodeGray8PNG(S.seeds, S.W, S.H)];
    const a = await fetch(api(name, "annotation"), { method: "PUT", body: labels, headers: { "Content-Type": "image/png" } });
    if (!a.ok) { setStatus(`save: ${await jsonError(a)}`, true); return false; }
    const s = await fetch(api(name, "scribbles"), { method: "PUT", body: seeds, headers: { "Content-Type": "image/png" } });
    if (!s.ok) { setStatus(`save scribbles: ${await jsonError(s)}`, true); return false; }
    const info = await a.json();
    const im = S.images.find((x) => x.name === name);
    if (im) im.annotated = true;
    markImage(name, "saved");
    if (name === S.name) setDirty(false);
    setStatus(`saved ${info.png} and ${info.json}`);
    S.saveCount = (S.saveCount || 0) + 1;
    return true;
  }
  function download(blob, filename) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }
  const stem = (n) => n.replace(/\.[^.]+$/, "");

  // ---------------------------------------------------------------------------------------------
  // Wiring
  function step(d) {
    const i = S.images.findIndex((im) => im.name === S.name);
    const j = Math.max(0, Math.min(S.images.length - 1, i + d));
    if (S.images[j]) openImage(S.images[j].name);
  }

  function setupControls() {
    for (const b of document.querySelectorAll("[data-tool]")) b.onclick = () => setTool(b.dataset.tool);
    $("brush-size").oninput = () => { $("brush-size-out").textContent = $("brush-size").value; };
    $("level").oninput = () => setLevel(Number($("level").value));
    $("opacity").oninput = () => { $("mask").style.opacity = String(Number($("opacity").value) / 100); };
    $("show-boundaries").onchange = renderBoundaries;
    $("undo").onclick = undo;
    $("redo").onclick = redo;
    $("clear").onclick = clearScribbles;
    $("save").onclick = save;
    $("export-png").onclick = async () => { if (S.name) download(await labelsPNG(), `${stem(S.name)}.png`); };
    $("export-coco").onclick = async () => {
      if (!S.name || !(await save())) return;
      const r = await fetch(api(S.name, "annotation") + "?format=coco");
      download(new Blob([await r.text()], { type: "application/json" }), `${stem(S.name)}.json`);
    };
    $("help-button").onclick = () => { $("help").hidden = !$("help").hidden; };
    $("help").onclick = () => { $("help").hidden = true; };
    window.addEventListener("resize", fitViewer);
    window.addEventListener("beforeunload", (ev) => { if (S.dirty) { ev.preventDefault(); ev.returnValue = ""; } });
    let lastOpacity = "45";
    document.addEventListener("keydown", (ev) => {
      if (ev.target instanceof HTMLInputElement && ev.target.type !== "range" && ev.target.type !== "checkbox") return;
      const k = ev.key, ctrl = ev.ctrlKey || ev.metaKey;
      if (ctrl && (k === "z" || k === "Z")) { ev.preventDefault(); ev.shiftKey ? redo() : undo(); }
      else if (ctrl && (k === "y" || k === "Y")) { ev.preventDefault(); redo(); }
      else if (ctrl && (k === "s" || k === "S")) { ev.preventDefault(); save(); }
      else if (ctrl) return;
      else if (k >= "1" && k <= "9") setLabel(Number(k));
      else if (k === "b" || k === "B") setTool("brush");
      else if (k === "e" || k === "E") setTool("eraser");
      else if (k === "r" || k === "R") setTool("region");
      else if (k === "[" || k === "]") {
        const s = $("brush-size");
        s.value = String(Math.max(1, Math.min(60, Number(s.value) + (k === "]" ? 1 : -1) * Math.max(1, Math.round(Number(s.value) / 5)))));
        s.oninput();
      } else if (k === "ArrowUp" || k === "ArrowDown") {
        ev.preventDefault();
        const n = S.levels.length, stepK = Math.max(1, Math.round(n / 50));
        setLevel(Number($("level").value) + (k === "ArrowUp" ? stepK : -stepK));
      } else if (k === "m" || k === "M") {
        const o = $("opacity");
        if (o.value !== "0") { lastOpacity = o.value; o.value = "0"; } else o.value = lastOpacity;
        o.oninput();
      } else if (k === "h" || k === "H") { const b = $("show-boundaries"); b.checked = !b.checked; renderBoundaries(); }
      else if (k === "n" || k === "N" || k === "PageDown") step(1);
      else if (k === "p" || k === "P" || k === "PageUp") step(-1);
      else if (k === "?") $("help").hidden = !$("help").hidden;
      else if (k === "Escape") $("help").hidden = true;
    });
  }

  async function main() {
    setupControls();
    setupPointer();
    setTool("brush");
    const cfg = await (await fetch("api/config")).json();
    S.labelNames = cfg.labels || [];
    S.nLabels = Math.max(9, S.labelNames.length);
    buildPalette();
    $("folder").textContent = cfg.folder;
    $("contours").textContent = `hierarchies: ${cfg.contours}`;
    await loadList();
    const want = decodeURIComponent(location.hash.slice(1));
    if (want && S.images.some((im) => im.name === want)) openImage(want);
    else if (S.images.length) openImage(S.images[0].name);
    else $("empty").textContent = "No images in this folder.";
  }
  S.api = { openImage, save, undo, redo, setLevel, setLabel, setTool, requestSegment, regionFill };
  main().catch((e) => setStatus(String(e), true));
})();
