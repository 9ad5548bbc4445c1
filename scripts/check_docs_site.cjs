// The built documentation as a reader sees it: headless Chromium (driven by playwright-core, no
// browser download) opens pages served over HTTP on loopback, at 1280x900, runs their JavaScript,
// and checks each one. scripts/test_docs_site.sh runs this; a failure names the page.
//
//   PLAYWRIGHT_CORE=/path/node_modules/playwright-core CHROMIUM=/usr/bin/chromium \
//   node scripts/check_docs_site.cjs BASE_URL API_PAGE API_ID SCREENSHOT_FOLDER
//
// API_PAGE / API_ID: the page and the anchor that document `googlenet` (from objects.inv).
"use strict";
const fs = require("fs");
const path = require("path");
const { chromium } = require(process.env.PLAYWRIGHT_CORE || "playwright-core");

const [base, apiPage, apiId, shots] = process.argv.slice(2);
if (!shots) {
  console.error("usage: node check_docs_site.cjs BASE_URL API_PAGE API_ID SCREENSHOT_FOLDER");
  process.exit(2);
}
const WIDTH = 1280;
const origin = new URL(base).origin;

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // playwright gives each launch a fresh profile folder; these keep Chromium off the network.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: WIDTH, height: 900 } });
  const failures = [];

  async function visit(name, url, check) {
    const page = await context.newPage();
    const errors = [];
    const notes = [];
    page.on("pageerror", (error) => errors.push("script error: " + error.message));
    page.on("console", (message) => {
      // A failed load is reported by the handlers below, with its address.
      if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
        errors.push("console: " + message.text());
      }
    });
    // Our own files must all load; other hosts (the MathJax CDN: none is reachable on the CI
    // machine) and the browser's own favicon request are only reported.
    const ours = (url) => url.startsWith(origin) && new URL(url).pathname !== "/favicon.ico";
    page.on("requestfailed", (request) => {
      (ours(request.url()) ? errors : notes).push("request failed: " + request.url());
    });
    page.on("response", (response) => {
      if (response.status() >= 400) {
        (ours(response.url()) ? errors : notes).push("HTTP " + response.status() + ": " + response.url());
      }
    });
    const full = new URL(url, base).href;
    try {
      const response = await page.goto(full, { waitUntil: "load", timeout: 30000 });
      if (!response || response.status() !== 200) throw new Error("HTTP " + (response && response.status()));
      const said = await check(page);
      if (errors.length) throw new Error(errors.join("; "));
      console.log("ok    %s  %s%s", name, full, said ? "  (" + said + ")" : "");
    } catch (error) {
      failures.push(name + " (" + full + "): " + error.message.split("\n")[0]);
      console.log("FAIL  %s  %s: %s", name, full, error.message.split("\n")[0]);
    } finally {
      for (const note of notes) console.log("      note: %s: %s", name, note);
      await page.screenshot({ path: path.join(shots, name + ".png") }).catch(() => {});
      await page.close();
    }
  }

  await visit("front-page", "index.html", async (page) => {
    const title = await page.title();
    const h1 = (await page.locator("h1").first().innerText()).trim();
    if (!title.includes("gluon-inception") || !h1.includes("gluon-inception")) {
      throw new Error("title " + JSON.stringify(title) + ", heading " + JSON.stringify(h1));
    }
    for (const target of ["installation.html", "model_zoo.html", "api/index.html"]) {
      if (!(await page.locator('a[href="' + target + '"]').count())) throw new Error("no link to " + target);
    }
    return "title " + JSON.stringify(title);
  });

  await visit("api-googlenet", apiPage, async (page) => {
    const entry = page.locator('[id="' + apiId + '"]');
    if (!(await entry.count())) throw new Error("no entry #" + apiId);
    if (!(await entry.first().isVisible())) throw new Error("#" + apiId + " is not visible");
    const signature = (await entry.first().innerText()).replace(/\s+/g, " ");
    if (!signature.includes("googlenet(")) throw new Error("the entry reads " + JSON.stringify(signature));
    return signature.slice(0, 60);
  });

  await visit("model-zoo", "model_zoo.html", async (page) => {
    const sizes = await page.evaluate(() => {
      const doc = document.documentElement;
      const tables = [...document.querySelectorAll("article table")].map((table) => {
        // furo wraps each table in a scrolling container: it must not need to scroll either.
        const box = table.closest(".table-wrapper") || table.parentElement;
        return { scroll: box.scrollWidth, client: box.clientWidth, rows: table.rows.length };
      });
      return { page: doc.scrollWidth, view: window.innerWidth, tables };
    });
    if (!sizes.tables.length) throw new Error("no table on the page");
    if (sizes.page > sizes.view) throw new Error("the page scrolls sideways: " + sizes.page + " px wide at " + sizes.view);
    const wide = sizes.tables.filter((t) => t.scroll > t.client + 1);
    if (wide.length) {
      throw new Error("a table scrolls sideways at " + sizes.view + " px: " +
                      wide.map((t) => t.scroll + " px of content in " + t.client + " px").join(", "));
    }
    await page.locator("article table").first().screenshot({ path: path.join(shots, "model-zoo-table.png") });
    return sizes.tables.length + " table(s), " + sizes.tables[0].rows + " rows in the first, all within " + sizes.view + " px";
  });

  await visit("search-googlenet", "search.html?q=googlenet", async (page) => {
    // Sphinx's search runs in JavaScript: wait until it says it has finished.
    await page.waitForFunction(() => {
      const summary = document.querySelector("#search-results .search-summary, #search-results p");
      return summary && /finished|found/i.test(summary.textContent) && !/searching/i.test(summary.textContent);
    }, null, { timeout: 30000 });
    const hrefs = await page.$$eval("#search-results ul.search li a", (links) => links.map((a) => a.href));
    const wanted = new URL(apiPage, base).href.split("#")[0];
    const hit = hrefs.find((href) => href.split("#")[0] === wanted);
    if (!hit) throw new Error(hrefs.length + " results, none is " + wanted + ": " + hrefs.slice(0, 5).join(", "));
    return hrefs.length + " results, the API entry among them";
  });

  await browser.close();
  if (failures.length) {
    console.error("\nthe docs site failed in the browser:\n  " + failures.join("\n  "));
    process.exit(1);
  }
  console.log("screenshots: %s", shots);
}

main().catch((error) => { console.error(error); process.exit(1); });
