#!/usr/bin/env python3
"""Drives the node's web console in headless Chromium (W3C WebDriver through chromedriver), as an
operator, a coordinator and a regulator's viewer would: run by Deploy/check-console.sh against real
daemons. Screenshots of every step go to the folder given; a failing step is named and its page saved.

usage: console_test.py COORDINATOR_URL COORDINATOR_TOKEN REGULATOR_URL REGULATOR_TOKEN SCREENSHOT_DIR
"""
import base64
import json
import os
import subprocess
import sys
import time
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class Browser:
    def __init__(self, port=9515):
        self.base = f"http://127.0.0.1:{port}"
        self.driver = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                urllib.request.urlopen(self.base + "/status", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        binary = next((b for b in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] if os.path.exists(b)), None)
        options = {"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]}
        if binary:
            options["binary"] = binary
        session = self.call("POST", "/session", {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}})
        self.session = session["sessionId"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"{}").get("value", {}) if path != "/session" else json.loads(response.read())["value"]
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"webdriver {method} {path}: {error.read().decode()[:300]}")

    def s(self, path, method="GET", body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def open(self, url):
        self.s("/url", "POST", {"url": url})

    def find(self, css, timeout=20):
        deadline = time.time() + timeout
        while True:
            try:
                return self.s("/element", "POST", {"using": "css selector", "value": css})[ELEMENT]
            except RuntimeError:
                if time.time() > deadline:
                    raise RuntimeError(f"no element {css!r} within {timeout} s")
                time.sleep(0.2)

    def type(self, css, text):
        element = self.find(css)
        self.s(f"/element/{element}/clear", "POST", {})
        self.s(f"/element/{element}/value", "POST", {"text": text})

    def click(self, css):
        self.s(f"/element/{self.find(css)}/click", "POST", {})

    def text(self, css):
        return self.s(f"/element/{self.find(css)}/text")

    def script(self, source, *args):
        return self.s("/execute/sync", "POST", {"script": source, "args": list(args)})

    def wait_text(self, css, predicate, what, timeout=60):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = self.text(css)
                if predicate(last):
                    return last
            except RuntimeError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{what}: {css!r} reads {last!r} after {timeout} s")

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.s("/screenshot")))

    def close(self):
        try:
            self.s("", "DELETE")
        finally:
            self.driver.terminate()


def main():
    coordinator, coordinator_token, regulator, regulator_token, shots = sys.argv[1:6]
    os.makedirs(shots, exist_ok=True)
    browser = Browser()
    step = "start"
    try:
        step = "a wrong token is refused"
        browser.open(coordinator + "/console")
        browser.type("#token", "not-a-token")
        browser.click("#login-button")
        browser.wait_text("#login-error", lambda t: "does not know" in t, step)
        browser.screenshot(f"{shots}/01-wrong-token.png")

        step = "the coordinator signs in and sees its node"
        browser.type("#token", coordinator_token)
        browser.click("#login-button")
        browser.wait_text("#node table", lambda t: "coordinator" in t and "intact" in t, step)
        browser.wait_text("#certificate-expiry", lambda t: "days left" in t, step)
        step = "the peers answer over mutual TLS"
        browser.wait_text("#peers table", lambda t: all(f"{b}\n" in t or f"{b} " in t for b in ["bank-a", "bank-b", "regulator"]) and "NO" not in t, step)
        step = "each peer's certificate expiry, seen in its handshake"
        browser.wait_text("#peers table", lambda t: t.count(" days") >= 4, step)
        step = "the policy in force, read-only, with its defaults"
        browser.wait_text("#policy", lambda t: "Coordinators allowed to propose jobs: none" in t and "No dataset is open" in t, step)
        browser.screenshot(f"{shots}/02-node.png")

        def submit(kind, fields, what):
            browser.click("nav button[data-view=submit]")
            browser.click(f"#kind option[value={kind}]")
            for name, value in fields:
                browser.type(f"#submit-form [name={name}]", value)
            browser.click("#submit-button")
            state = browser.wait_text("#job-state", lambda t: t.startswith("succeeded") or t.startswith("failed") or t.startswith("refused"), what)
            return state, browser.script("return document.getElementById('submitted').dataset.job")

        step = "a PSI submitted from the form reaches succeeded"
        state, job = submit("psi", [("parties", "bank-a:customers.phone\nbank-b:customers.phone"), ("deliver", "bank-a")], step)
        browser.screenshot(f"{shots}/03-submitted.png")
        if not state.startswith("succeeded"):
            raise RuntimeError(f"{step}: the job ended {state!r}")

        step = "a union-sum from its own form (aggregator, value column, threshold) reaches succeeded"
        browser.click("nav button[data-view=submit]")
        browser.click("#kind option[value=union-sum]")
        hidden = browser.script("return ['deliver', 'label', 'value'].map((n) => document.querySelector('#submit-form [name=' + n + ']').offsetParent === null)")
        if hidden != [True, True, False]:
            raise RuntimeError(f"{step}: the union-sum form shows the wrong fields (deliver, label, value hidden: {hidden})")
        state, union_job = submit("union-sum", [("parties", "bank-a:customers.phone\nbank-b:customers.phone\nbank-c:customers.phone"),
                                                ("aggregator", "regulator"), ("value", "balance"), ("reporting-threshold", "50000")], step)
        browser.screenshot(f"{shots}/03b-union-sum.png")
        if not state.startswith("succeeded"):
            raise RuntimeError(f"{step}: the job ended {state!r}")

        step = "the jobs view shows it at 100 %"
        browser.click("nav button[data-view=jobs]")
        browser.wait_text("#jobs table", lambda t: job in t and "100 %" in t, step)
        browser.screenshot(f"{shots}/04-jobs.png")

        step = "a refused job says who refused and why"
        browser.click("nav button[data-view=submit]")
        browser.click("#kind option[value=psi]")
        browser.type("#submit-form [name=parties]", "bank-a:no_such_dataset.phone\nbank-b:customers.phone")
        browser.click("#submit-button")
        browser.wait_text("#submitted", lambda t: "refused by" in t and "bank-a" in t, step)
        browser.screenshot(f"{shots}/05-refused.png")

        step = "the audit trail with its chain verified"
        browser.click("nav button[data-view=audit]")
        browser.wait_text("#audit", lambda t: "Hash chain verified: intact." in t and job in t and union_job in t, step)
        if browser.script("return document.querySelectorAll('#audit details').length") < 1:
            raise RuntimeError(f"{step}: no record's details are folded")
        browser.click("#audit details summary")
        step = "the ledger: this node's Merkle log, its peers' heads, no alarm"
        browser.wait_text("#ledger", lambda t: "Merkle log:" in t and "No ledger alarm" in t, step)
        browser.screenshot(f"{shots}/06-audit.png")

        step = "the regulator's viewer opens the report: table, chart, provenance, export"
        browser.click("#logout")
        browser.open(regulator + "/console")
        browser.type("#token", regulator_token)
        browser.click("#login-button")
        browser.find("#nav:not([hidden])")
        browser.click("nav button[data-view=reports]")
        browser.click("#reports button.open-report")
        report = browser.wait_text("#report", lambda t: "Provenance" in t and "included" in t, step)
        browser.wait_text("#report-receipt", lambda t: "signed by" in t and "bank-a" in t and "coordinator" in t and "NOT" not in t, step)
        # Each party's log holds the receipt once its tree head reaches the regulator (gossip, seconds after
        # the job): the viewer shows what the regulator knew when the report opened, so open it again until
        # every inclusion is proven.
        deadline = time.time() + 90
        while True:
            try:
                browser.wait_text("#report-inclusions", lambda t: t.count("yes") >= 4 and "NO" not in t,
                                  step + " (each party's log holds the receipt)", timeout=10)
                break
            except RuntimeError:
                if time.time() > deadline:
                    raise
                browser.click("#reports button.open-report")
        if browser.script("return document.querySelectorAll('#report svg.chart rect').length") < 1:
            raise RuntimeError(f"{step}: no bar in the chart")
        csv = browser.script("""
            let captured = null; const original = URL.createObjectURL;
            URL.createObjectURL = (blob) => { captured = blob; return original(blob); };
            document.getElementById('export-csv').click(); URL.createObjectURL = original;
            return captured ? captured.text() : null;""")
        if not csv or not csv.startswith("group,records,parties"):
            raise RuntimeError(f"{step}: the CSV export starts {str(csv)[:60]!r}")
        if "Print" not in report:
            raise RuntimeError(f"{step}: no print button")
        browser.screenshot(f"{shots}/07-report.png")
        print(f"console: {step.split(':')[0]} … every step passed (screenshots in {shots})")
    except Exception as error:
        try:
            browser.screenshot(f"{shots}/failed.png")
            with open(f"{shots}/failed.html", "w") as f:
                f.write(browser.script("return document.documentElement.outerHTML"))
        except Exception:
            pass
        print(f"console: FAILED at '{step}': {error} (page saved in {shots}/failed.png)")
        sys.exit(1)
    finally:
        browser.close()


if __name__ == "__main__":
    main()
