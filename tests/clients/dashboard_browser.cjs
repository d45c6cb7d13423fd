// Drive the dashboard in headless Chromium (playwright-core, the system chromium) and print
// what a user would see as JSON. Used by test_dashboard_browser.py.
// usage: node dashboard_browser.cjs URL SEARCH_TERM SCREENSHOT_DIR
const { chromium } = require('playwright-core');

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

async function rows(page) {
  return page.locator('#case-table tr.case-row td.task').allTextContents();
}

(async () => {
  const [url, term, shots] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: FLAGS, headless: true,
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const out = {};
    const response = await page.goto(url);
    out.status = response.status();
    out.url = page.url();
    out.title = await page.title();
    out.rowsBefore = await rows(page);
    out.count = (await page.textContent('#case-count')).trim();
    out.charts = await page.locator('svg.chart').count();
    out.retriever = (await page.textContent('#retriever')).replace(/\s+/g, ' ').trim();
    await page.screenshot({ path: `${shots}/dashboard.png`, fullPage: true });

    await page.fill('input[name=q]', term);
    await Promise.all([page.waitForURL(/q=/), page.click('form.filters button')]);
    out.searchUrl = page.url();
    out.rowsAfter = await rows(page);
    await page.screenshot({ path: `${shots}/dashboard-search.png`, fullPage: true });

    await Promise.all([page.waitForURL(/cases/), page.click('#case-table tr.case-row td.task a')]);
    out.caseTask = (await page.textContent('#case-task')).trim();
    out.planItems = await page.locator('#plan li').allTextContents();
    out.steps = await page.locator('#trajectory .step').count();
    await page.screenshot({ path: `${shots}/case.png`, fullPage: true });
    console.log(JSON.stringify(out));
  } finally {
    await browser.close();
  }
})().catch((error) => { console.error(error); process.exit(1); });
