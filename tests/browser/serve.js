// A tiny static file server for the browser tests: 127.0.0.1 only, an OS-chosen port
// printed as "listening PORT" on stdout, at most MAX_REQUESTS requests and MAX_SECONDS
// seconds, files under ROOT only. The test stops it by its PID.
"use strict";
const http = require("http");
const fs = require("fs");
const path = require("path");

const root = path.resolve(process.argv[2] || ".");
const MAX_REQUESTS = 200;
const MAX_SECONDS = 120;
const types = { ".html": "text/html; charset=utf-8", ".json": "application/json", ".css": "text/css", ".js": "text/javascript", ".png": "image/png" };
let served = 0;

const server = http.createServer((req, res) => {
  served += 1;
  if (served > MAX_REQUESTS) { res.writeHead(503); res.end(); server.close(); return; }
  let rel;
  try { rel = decodeURIComponent(new URL(req.url, "http://127.0.0.1").pathname); } catch (e) { rel = "/"; }
  if (rel.endsWith("/")) rel += "index.html";
  const file = path.resolve(root, "." + rel);
  if (!file.startsWith(root + path.sep) || req.method !== "GET") { res.writeHead(404); res.end(); return; }
  fs.readFile(file, (err, data) => {
    if (err) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { "content-type": types[path.extname(file)] || "application/octet-stream" });
    res.end(data);
  });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write("listening " + server.address().port + "\n");
});
setTimeout(() => process.exit(0), MAX_SECONDS * 1000).unref();
