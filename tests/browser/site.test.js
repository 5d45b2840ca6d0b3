// Drives Debian's chromium (headless, through playwright-core) over a site `ocituf site`
// wrote, and checks what a person looking at it would see. Run by crates/cli/tests/it/site.rs:
//
//   node site.test.js '{"urls":[...],"image":"acme/app:1.0","expiring":"app",
//                       "moved":"acme/app:2.0","screenshots":"DIR or null"}'
//
// Prints one line per check; exits 1 on the first failed check.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const spec = JSON.parse(process.argv[2]);
const CHROMIUM = process.env.OCITUF_CHROMIUM || "/usr/bin/chromium";

function check(ok, what) {
  if (!ok) { console.error("FAILED: " + what); process.exit(1); }
  console.log("ok: " + what);
}

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "ocituf-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
    viewport: { width: 1280, height: 900 },
    timeout: 60000,
  });
  try {
    for (const [i, url] of spec.urls.entries()) {
      const page = await context.newPage();
      const problems = [];
      page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") problems.push(m.type() + ": " + m.text()); });
      page.on("pageerror", (e) => problems.push("page error: " + e.message));
      page.on("dialog", (d) => { problems.push("dialog: " + d.message()); d.dismiss(); });
      const outside = [];
      page.on("request", (r) => {
        const u = r.url();
        if (!u.startsWith("file://") && !u.startsWith("http://127.0.0.1:") && !u.startsWith("data:")) outside.push(u);
      });
      await page.goto(url, { waitUntil: "load" });
      check((await page.title()).includes("root of trust"), url + " loads");

      const role = page.locator(`tr[data-role="${spec.expiring}"]`);
      check((await role.getAttribute("data-expiry")) === "expiring", `role ${spec.expiring} is flagged as expiring`);
      check((await role.innerText()).includes("expires soon"), `role ${spec.expiring} shows "expires soon"`);

      if (spec.hostile) {
        // A role name that is HTML: shown as text, never run (no dialog, no injected element).
        const shown = await page.evaluate((name) => {
          const rows = [...document.querySelectorAll("tr[data-role]")].filter((r) => r.dataset.role === name);
          return rows.length === 1 && rows[0].querySelector("b").textContent === name && document.querySelectorAll("main img").length === 0;
        }, spec.hostile);
        check(shown, "a role named like HTML is shown as text and not run");
        await page.fill("#search", "onerror");
        await page.locator("#results li[data-kind=role]").first().waitFor({ state: "visible", timeout: 5000 });
        check((await page.locator("#results li[data-kind=role] a").first().textContent()) === spec.hostile, "the search shows the HTML-like role name as text");
      }

      if (spec.pending) {
        const row = page.locator(`tr[data-pending="${spec.pending}"]`);
        check((await row.count()) === 1 && (await row.innerText()).includes("of 2 needed"),
          `pending root version ${spec.pending} is shown waiting for signatures`);
      }

      const moved = page.locator(`tr[data-image="${spec.moved}"]`);
      check((await moved.getAttribute("data-now")) === "moved", `${spec.moved} (tag moved in the registry) is marked moved`);
      check((await moved.innerText()).includes("NOT signed"), `${spec.moved} shows NOT signed`);
      const signed = page.locator(`tr[data-image="${spec.image}"]`);
      check((await signed.getAttribute("data-now")) === "signed", `${spec.image} is verified now`);

      if (i === 0 && spec.screenshots) {
        await page.fill("#search", "");
        await page.screenshot({ path: path.join(spec.screenshots, "site-overview.png"), fullPage: false });
      }
      await page.fill("#search", spec.image);
      const hit = page.locator("#results li[data-kind=image] a", { hasText: spec.image });
      await hit.first().waitFor({ state: "visible", timeout: 5000 });
      check((await hit.count()) >= 1, `search for ${spec.image} finds the image`);
      if (i === 0 && spec.screenshots) {
        await page.screenshot({ path: path.join(spec.screenshots, "site-search.png") });
      }
      await page.fill("#search", "no-such-thing-anywhere");
      check((await page.locator("#results li[data-kind]").count()) === 0, "search for a missing name finds nothing");
      if (i === 0 && spec.screenshots) {
        await page.fill("#search", "");
        await page.locator("#images").scrollIntoViewIfNeeded();
        await page.screenshot({ path: path.join(spec.screenshots, "site-full.png"), fullPage: true });
      }
      check(problems.length === 0, "no console errors or warnings: " + JSON.stringify(problems));
      check(outside.length === 0, "no request leaves the site: " + JSON.stringify(outside));
      await page.close();
    }
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
})().catch((e) => { console.error("FAILED: " + (e && e.stack || e)); process.exit(1); });
