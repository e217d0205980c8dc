// Browser test of the secsip web manager: Debian's headless Chromium driven by playwright-core.
//
//   node manager.mjs --url http://127.0.0.1:10000/ --out DIR --scan 'COMMAND' [--token-file F]
//
// Loads the dashboard, opens the candidate editor, adds a rule file that drops the user agent
// "friendly-scanner" with a typo in it, checks that the page flags the typo at its line, fixes
// it, saves (Ctrl+S), looks at the diff, commits; then runs COMMAND (a sipvicious scan through
// the appliance, run by the shell; its output must not show the server) and waits for the new
// rule's hit counter in the page to go up. Screenshots go to DIR; their paths are printed.
// Every wait is bounded; any failure exits 1 with a screenshot of the page as it was.
import { chromium } from "playwright-core";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith("--")) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const URL_ = args.url || "http://127.0.0.1:10000/";
const OUT = args.out || "target/web-test";
const SCAN = args.scan;
const TOKEN = args["token-file"] ? readFileSync(args["token-file"], "utf8").split("\n")[0].trim() : null;
const RULE_FILE = "90-block-friendly-scanner.toml";
const RULE_ID = "block-friendly-scanner";
const T = 15000; // default bound of every wait, ms

mkdirSync(OUT, { recursive: true });
const shots = [];
const log = (m) => console.log(`web-test: ${m}`);

async function shot(page, name) {
  const p = join(OUT, name);
  await page.screenshot({ path: p, fullPage: true, timeout: T });
  shots.push(p);
  log(`screenshot ${p}`);
}

function run(cmd, timeoutMs) {
  return new Promise((resolve) => {
    execFile("/bin/bash", ["-c", cmd], { timeout: timeoutMs, maxBuffer: 8 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? (err.code ?? "killed") : 0, out: stdout + stderr }));
  });
}

const profile = mkdtempSync(join(tmpdir(), "secsip-web-chromium-"));
// A fresh profile (user data dir) for every run; Playwright passes it as --user-data-dir.
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  timeout: 60000,
  viewport: { width: 1366, height: 768 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await ctx.newPage();
page.setDefaultTimeout(T);
const consoleErrors = [];
page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
page.on("pageerror", (e) => consoleErrors.push("page error: " + e.message));
// window.confirm() is answered yes (the test only confirms what it means to do).
page.on("dialog", (d) => d.accept());

let failed = false;
try {
  // 1. Dashboard (with the token, when the API wants one: the page asks for it on a 401).
  log(`loading ${URL_}`);
  await page.goto(URL_ + "#dashboard", { waitUntil: "load", timeout: T });
  if (TOKEN) {
    const dlg = page.getByTestId("token-dialog");
    await dlg.waitFor({ state: "visible", timeout: T });
    log("the page asked for the API token (401): typing it");
    await page.getByTestId("token-input").fill(TOKEN);
    await page.getByTestId("token-input").press("Enter");
    await dlg.waitFor({ state: "hidden", timeout: T });
  }
  await page.waitForFunction(() => document.getElementById("latency").textContent.includes("p99.9")
    && document.getElementById("rate-in").textContent !== "–", null, { timeout: T });
  const meta = await page.getByTestId("dash-meta").textContent();
  log(`dashboard: ${meta}`);
  await shot(page, "1-dashboard.png");

  // 2. Editor: a new rule file, typed with a typo on line 4.
  await page.keyboard.press("Alt+3");
  await page.waitForFunction(() => location.hash === "#editor" && document.querySelectorAll("[data-testid=file-item]").length > 0, null, { timeout: T });
  await page.getByTestId("valid-state").and(page.locator('[data-valid="true"]')).waitFor({ timeout: T });
  log(`candidate: ${await page.getByTestId("cand-meta").textContent()}, ${await page.getByTestId("valid-state").textContent()}`);
  await page.getByTestId("new-file-path").fill(RULE_FILE);
  await page.getByTestId("new-file-path").press("Enter");
  await page.waitForFunction((f) => document.getElementById("cur-file").textContent === f, RULE_FILE, { timeout: T });
  const editor = page.getByTestId("editor");
  await editor.focus();
  const typo = '[[rule]]\nid = "block-friendly-scanner"\nwhen = \'sip.ua startswith "friendly-scanner"\'\nactoin = "drop"\n';
  await editor.pressSequentially(typo, { delay: 5 });
  // The page validates 400 ms after the last key and marks line 4.
  await page.locator('#gutter div.err[data-line="4"]').waitFor({ timeout: T });
  const errLines = await page.locator("#gutter div.err").evaluateAll((ds) => ds.map((d) => d.dataset.line));
  if (errLines.join() !== "4") throw new Error(`gutter marks lines ${errLines} (want only 4)`);
  const errText = await page.getByTestId("errors").textContent();
  if (!errText.includes(`${RULE_FILE}:4:`) || !/actoin/.test(errText)) throw new Error(`error list does not name ${RULE_FILE}:4 and actoin: ${errText}`);
  if ((await page.getByTestId("valid-state").getAttribute("data-valid")) !== "false") throw new Error("the page does not say invalid");
  log(`typo flagged at line 4: ${errText.trim()}`);
  await shot(page, "2-typo-flagged.png");

  // Committing now must be refused (unsaved) and nothing must change.
  // 3. Fix it from the keyboard: select "actoin" and type "action".
  await editor.evaluate((ta) => { const i = ta.value.indexOf("actoin"); ta.focus(); ta.setSelectionRange(i, i + 6); });
  await page.keyboard.type("action");
  await page.waitForFunction(() => document.getElementById("valid-state").dataset.valid === "true"
    && !document.querySelector("#gutter div.err") && !document.querySelector("#errors li"), null, { timeout: T });
  log(`fixed: ${await page.getByTestId("valid-state").textContent()}`);
  await page.keyboard.press("Control+s");
  await page.locator('[data-testid=commit-result][data-state="saved"]').waitFor({ timeout: T });
  log(await page.getByTestId("commit-result").textContent());

  // 4. Diff vs running shows the new file, then commit.
  await page.getByTestId("diff-btn").click();
  await page.locator(`#diff [data-path="${RULE_FILE}"] .add`, { hasText: "block-friendly-scanner" }).first().waitFor({ timeout: T });
  log("diff vs running shows the added rule");
  await page.getByTestId("commit-btn").click();
  await page.locator('[data-testid=commit-result][data-state="committed"]').waitFor({ timeout: T });
  log(await page.getByTestId("commit-result").textContent());
  await shot(page, "3-committed.png");

  // 5. The rule is running, with its hit counter at 0.
  await page.keyboard.press("Alt+2");
  const row = page.locator(`tr[data-rule-id="${RULE_ID}"]`);
  await row.waitFor({ timeout: T });
  const hits = async () => Number(await row.getByTestId("rule-hits").textContent());
  const before = await hits();
  log(`rule ${RULE_ID} is running: ${(await row.innerText()).replace(/\s+/g, " ")} (hits ${before})`);

  // 6. The scan, through the appliance.
  if (SCAN) {
    log(`scan: ${SCAN}`);
    const r = await run(SCAN, 60000);
    writeFileSync(join(OUT, "scan.log"), r.out);
    log(`scan exit ${r.code}; output in ${join(OUT, "scan.log")}`);
    if (/10\.99\.0\.2:5060/.test(r.out)) throw new Error("the scan found the server: the new rule did not block it\n" + r.out);
    log("the scan found nothing: blocked");
  }
  await page.waitForFunction(([id, b]) => {
    const c = document.querySelector(`tr[data-rule-id="${id}"] [data-testid=rule-hits]`);
    return c && Number(c.textContent) > b;
  }, [RULE_ID, before], { timeout: 20000 });
  log(`rule ${RULE_ID} hits in the page: ${before} -> ${await hits()}`);
  await shot(page, "4-rule-hits.png");
  await page.keyboard.press("Alt+1");
  await page.locator("#drops-rule td", { hasText: RULE_ID }).first().waitFor({ timeout: T });
  await shot(page, "5-dashboard-after.png");

  // 7. List editor: an entry with a TTL and a reason, removed again; a bad value is refused
  // with the server's message shown.
  await page.keyboard.press("Alt+4");
  await page.locator('[data-testid=list-item]', { hasText: "blocked-destinations" }).click();
  await page.getByTestId("entry-value").fill("+99912345");
  await page.getByTestId("entry-ttl").fill("1h");
  await page.getByTestId("entry-reason").fill("web-test");
  await page.getByTestId("entry-reason").press("Enter");
  const entry = page.locator('#entries-body tr[data-value="+99912345"]');
  await entry.waitFor({ timeout: T });
  if (!/api/.test(await entry.innerText()) || !/web-test/.test(await entry.innerText())) throw new Error("the new list entry does not show source api and its reason");
  log(`list blocked-destinations: added ${(await entry.innerText()).replace(/\s+/g, " ")}`);
  await entry.getByRole("button", { name: /remove/i }).click();
  await entry.waitFor({ state: "detached", timeout: T });
  await page.locator('[data-testid=list-item]', { hasText: "allow-ip" }).click();
  await page.waitForFunction(() => document.getElementById("list-title").textContent.startsWith("allow-ip"), null, { timeout: T });
  await page.getByTestId("entry-value").fill("not-an-address");
  await page.getByTestId("entry-ttl").fill("");
  await page.getByTestId("entry-value").press("Enter");
  // The server's refusal (400, naming the value), not the notice of the removal just before.
  await page.waitForFunction(() => {
    const n = document.getElementById("notice");
    return !n.hidden && /not-an-address/.test(n.textContent) && /400/.test(n.textContent);
  }, null, { timeout: T });
  if (await page.locator('#entries-body tr[data-value="not-an-address"]').count() !== 0) throw new Error("the refused value shows in the list");
  log(`a bad list value is refused: ${(await page.locator("#notice-text").textContent()).trim()}`);
  await shot(page, "6-lists.png");

  // 8. Ban editor: ban an address, then unban it.
  await page.keyboard.press("Alt+5");
  await page.getByTestId("ban-ip").fill("203.0.113.77");
  await page.getByTestId("ban-ttl").fill("1h");
  await page.getByTestId("ban-reason").fill("web-test");
  await page.getByTestId("ban-reason").press("Enter");
  const ban = page.locator('#bans-body tr[data-ip="203.0.113.77"]');
  await ban.waitFor({ timeout: T });
  log(`ban added: ${(await ban.innerText()).replace(/\s+/g, " ")}`);
  await ban.getByRole("button", { name: /unban/i }).click();
  await ban.waitFor({ state: "detached", timeout: T });
  log("ban removed");

  // 9. A stale save: someone else writes the candidate behind the page's back; Save gets 409,
  // the page says so and offers a reload.
  await page.keyboard.press("Alt+3");
  await page.locator(`[data-testid=file-item][data-path="${RULE_FILE}"]`).click();
  await editor.press("Control+End");
  await page.keyboard.type("# tuned in the page\n");
  const auth = TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {};
  const other = await fetch(new URL("/api/datastores/candidate/files/99-someone-else.toml", URL_),
    { method: "PUT", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify({ text: "# another operator\n" }) });
  if (!other.ok) throw new Error(`the concurrent write failed: ${other.status} ${await other.text()}`);
  await page.keyboard.press("Control+s");
  await page.locator('[data-testid=commit-result][data-state="conflict"]').waitFor({ timeout: T });
  log(`stale save refused: ${(await page.getByTestId("commit-result").textContent()).trim()}`);
  await shot(page, "7-conflict.png");
  await page.getByTestId("commit-result").getByRole("button", { name: /reload/i }).click();
  await page.locator('[data-testid=file-item][data-path="99-someone-else.toml"]').waitFor({ timeout: T });

  // 10. Commit-confirmed, not confirmed: the countdown runs out and running falls back.
  const runningVersion = async () => (await (await fetch(new URL("/api/datastores/running", URL_), { headers: auth })).json()).version;
  const v0 = await runningVersion();
  await page.getByTestId("confirm-s").fill("3");
  await page.getByTestId("commit-confirmed-btn").click();
  await page.getByTestId("pending").waitFor({ state: "visible", timeout: T });
  log(`commit-confirmed 3 s: ${(await page.getByTestId("pending").innerText()).replace(/\s+/g, " ")}`);
  await shot(page, "8-pending-confirm.png");
  await page.getByTestId("pending").waitFor({ state: "hidden", timeout: T });
  await page.locator("#notice-text", { hasText: "not confirmed in time" }).waitFor({ timeout: T });
  const files = Object.keys((await (await fetch(new URL("/api/datastores/running", URL_), { headers: auth })).json()).files);
  if (files.includes("99-someone-else.toml")) throw new Error("running still has the unconfirmed commit's file after the timeout");
  log(`not confirmed: running fell back (version ${v0} before, ${await runningVersion()} now, without 99-someone-else.toml)`);

  // 11. Commit-confirmed, confirmed in time with the page's Confirm button.
  await page.getByTestId("confirm-s").fill("60");
  await page.getByTestId("commit-confirmed-btn").click();
  await page.getByTestId("pending").waitFor({ state: "visible", timeout: T });
  await page.getByTestId("confirm-btn").click();
  await page.getByTestId("pending").waitFor({ state: "hidden", timeout: T });
  const files2 = Object.keys((await (await fetch(new URL("/api/datastores/running", URL_), { headers: auth })).json()).files);
  if (!files2.includes("99-someone-else.toml")) throw new Error("the confirmed commit is not running");
  await page.waitForTimeout(2500); // past a poll: still confirmed
  if (await page.getByTestId("pending").isVisible()) throw new Error("the pending banner came back after Confirm");
  log(`confirmed in time: ${(await page.locator("#notice-text").textContent()).trim()}`);
  if (consoleErrors.length) log(`browser console errors (not fatal): ${consoleErrors.join(" | ")}`);
} catch (e) {
  failed = true;
  console.error(`web-test: FAILED: ${e.message}`);
  if (consoleErrors.length) console.error(`web-test: browser console: ${consoleErrors.join(" | ")}`);
  try { await shot(page, "failure.png"); } catch (_) { /* the browser may be gone */ }
} finally {
  await ctx.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
log(`screenshots:\n  ${shots.join("\n  ")}`);
process.exit(failed ? 1 : 0);
