"""Every customer page, in English and in Simplified Chinese, passes axe-core's WCAG 2.0/2.1 A and AA rules.

axe-core comes from npm (package.json pins it; ``make test`` runs ``npm ci``).
The pages send a strict Content-Security-Policy (script-src 'self'), which
blocks the inline ``<script>`` that ``page.add_script_tag(path=…)`` would
add. Rather than switching the policy off for the test (``bypass_csp=True``),
the browser is told to answer one same-origin URL, ``/__axe__/axe.min.js``,
with the file from node_modules (``page.route``): the page is checked with its
real policy in force, and a page that breaks that policy (an inline style or
script, a script error) fails here too.

Each case brings a page into one state — empty, with errors, with an open
question, ready for pickup… — in the browser, then runs axe on what shows.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from playwright.sync_api import expect

from tickets.models import Rating
from tickets.tracking import tracking_path
from tests import factories

from . import (
    BROWSER_TEST,
    add_photo,
    log_in,
    make_customer,
    make_ticket,
    receipt_photo,
    set_language,
    ticket_mid_repair_with_question,
)

pytestmark = BROWSER_TEST

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
AXE_URL = "/__axe__/axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
LANGUAGES = ["en", "zh-hans"]
CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class World:
    page: object
    catalogue: dict
    language: str
    tmp_path: Path
    settings: object

    def customer(self, **kw):
        """A customer (their account speaks the page's language); ``log_in`` opens a page as them."""
        return make_customer(language=self.language, **kw)

    def open_as(self, customer, path):
        """Log in through the real form and land on ``path``."""
        log_in(self.page, customer.email, next=path)
        assert self.page.url.endswith(path), self.page.url

    def ticket(self, customer, **kw):
        return make_ticket(customer, self.catalogue, **kw)


def submit_form(page):
    page.locator("form[data-submit-form] button[type=submit]").click()


# --- the pages, each in one state ----------------------------------------------------------------


def start(w):
    w.page.goto("/")


def track(w):
    w.page.goto("/track/")


def _wrong_track(page):
    page.fill("#id_number", "7K3Q-9XWD-M2PA")
    page.fill("#id_factor", "0000")
    page.locator("form.track-form button[type=submit]").click()
    page.wait_for_selector(".form-errors")


def track_with_the_uniform_error(w):
    w.page.goto("/track/")
    _wrong_track(w.page)


def tracked(w):
    ticket = w.ticket(make_customer())
    ticket.perform("receive_device", by=factories.mover(), public_note="Received at the counter.")
    w.page.goto(tracking_path(ticket))


def login(w):
    w.page.goto("/accounts/login/")


def lockout(w):
    w.settings.AXES_FAILURE_LIMIT = 1
    customer = make_customer()
    w.page.goto("/accounts/login/")
    w.page.fill("#id_username", customer.email)
    w.page.fill("#id_password", "not the password")
    with w.page.expect_response(lambda r: r.status == 429):
        w.page.locator("main form button[type=submit]").click()
    w.page.wait_for_load_state()


def signup(w):
    w.page.goto("/accounts/signup/")


def signup_with_errors(w):
    taken = make_customer()
    w.page.goto("/accounts/signup/")
    w.page.fill("#id_full_name", "Wang Fang")
    w.page.fill("#id_email", taken.email)
    w.page.fill("#id_phone", "12")
    w.page.fill("#id_password1", "plum blossom river 42")
    w.page.fill("#id_password2", "plum blossom river 43")
    w.page.locator("main form button[type=submit]").click()
    w.page.wait_for_selector(".form-errors")


def password_reset(w):
    w.page.goto("/accounts/password-reset/")


def password_reset_sent(w):
    customer = make_customer()
    w.page.goto("/accounts/password-reset/")
    w.page.fill("#id_email", customer.email)
    w.page.locator("main form button[type=submit]").click()
    w.page.wait_for_url("**/password-reset/sent/")


def password_reset_new_password(w):
    customer = make_customer()
    uid = urlsafe_base64_encode(force_bytes(customer.pk))
    w.page.goto(f"/accounts/password-reset/{uid}/{default_token_generator.make_token(customer)}/")
    expect(w.page.locator("#id_new_password1")).to_be_visible()


def password_reset_link_used(w):
    w.page.goto("/accounts/password-reset/MQ/bad-token/")


def password_reset_complete(w):
    w.page.goto("/accounts/password-reset/complete/")


def profile(w):
    customer = w.customer()
    cancelled = w.ticket(customer)
    cancelled.perform("cancel", by=customer, reason="solved_myself", note="It works again.")
    w.open_as(customer, "/accounts/profile/")
    expect(w.page.locator("table")).to_be_visible()


def submit(w):
    w.open_as(w.customer(), "/tickets/new/")


def submit_with_errors(w):
    w.open_as(w.customer(), "/tickets/new/")
    w.page.set_input_files("#id_receipt_photo", receipt_photo(w.tmp_path / "receipt.jpg"))
    w.page.fill("#id_imei_or_serial", "490154203237519")  # one digit wrong
    submit_form(w.page)
    expect(w.page.locator("#error-summary")).to_be_visible()
    expect(w.page.locator(".staged-photos img")).to_have_count(1)


def submit_again(w):
    customer = w.customer()
    cancelled = w.ticket(customer)
    add_photo(cancelled, "receipt", receipt_photo(w.tmp_path / "receipt.jpg"))
    cancelled.perform("cancel", by=customer, reason="customer_other")
    w.open_as(customer, f"/my/tickets/{cancelled.number}/resubmit/")
    expect(w.page.locator(".reuse-photos img")).to_have_count(1)


def submitted(w):
    customer = w.customer()
    ticket = w.ticket(customer)
    w.open_as(customer, f"/my/tickets/{ticket.number}/submitted/")


def my_tickets(w):
    customer = w.customer()
    w.ticket(customer)
    factories.advance(w.ticket(customer), "repairing")
    factories.advance(w.ticket(customer), "completed")
    w.open_as(customer, "/my/tickets/")


def ticket_with_a_question_and_photos(w):
    customer = w.customer()
    ticket = ticket_mid_repair_with_question(customer, w.catalogue, w.tmp_path)
    w.open_as(customer, f"/my/tickets/{ticket.number}/")
    expect(w.page.locator("#action-needed")).to_be_visible()
    expect(w.page.locator(".thumbs img")).to_have_count(2)


def ticket_ready_for_pickup(w):
    customer = w.customer()
    ticket = factories.advance(w.ticket(customer), "ready_for_pickup")
    w.open_as(customer, f"/my/tickets/{ticket.number}/")
    expect(w.page.locator(".pickup-code")).to_be_visible()


def ticket_completed_with_rating_form(w):
    customer = w.customer()
    ticket = factories.advance(w.ticket(customer), "completed")
    w.open_as(customer, f"/my/tickets/{ticket.number}/")
    expect(w.page.locator("#rate")).to_be_visible()


def ticket_rated(w):
    customer = w.customer()
    ticket = factories.advance(w.ticket(customer), "completed")
    Rating.objects.create(ticket=ticket, stars=4, comment="Quick and friendly.")
    w.open_as(customer, f"/my/tickets/{ticket.number}/")


def ticket_cancelled_device_at_desk(w):
    customer = w.customer()
    ticket = factories.advance(w.ticket(customer), "inspecting")
    ticket.perform("cancel", by=customer, reason="no_longer_needed", note="Bought a new one.")
    w.open_as(customer, f"/my/tickets/{ticket.number}/")
    expect(w.page.locator(".message-warning")).to_be_visible()


def cancel_confirmation(w):
    customer = w.customer()
    ticket = factories.advance(w.ticket(customer), "inspecting")
    w.open_as(customer, f"/my/tickets/{ticket.number}/cancel/")


def cancel_without_a_reason(w):
    customer = w.customer()
    ticket = w.ticket(customer)
    w.open_as(customer, f"/my/tickets/{ticket.number}/cancel/")
    # The browser itself insists on a reason (the radio buttons are required);
    # switch that off to see the server's answer, as an older browser would.
    w.page.eval_on_selector("form.danger-zone", "form => { form.noValidate = true; }")
    w.page.locator("form.danger-zone button[type=submit]").click()
    w.page.wait_for_selector(".form-errors")


def service_record(w):
    customer = w.customer()
    ticket = factories.advance(w.ticket(customer), "completed")
    w.open_as(customer, f"/my/tickets/{ticket.number}/record/")


def notifications(w):
    customer = w.customer()
    ticket = w.ticket(customer)
    ticket.perform("receive_device", by=factories.mover(), public_note="Received.")
    w.open_as(customer, "/my/notifications/")
    expect(w.page.locator(".message-list li")).not_to_have_count(0)


PAGES = [
    start,
    track,
    track_with_the_uniform_error,
    tracked,
    login,
    lockout,
    signup,
    signup_with_errors,
    password_reset,
    password_reset_sent,
    password_reset_new_password,
    password_reset_link_used,
    password_reset_complete,
    profile,
    submit,
    submit_with_errors,
    submit_again,
    submitted,
    my_tickets,
    ticket_with_a_question_and_photos,
    ticket_ready_for_pickup,
    ticket_completed_with_rating_form,
    ticket_rated,
    ticket_cancelled_device_at_desk,
    cancel_confirmation,
    cancel_without_a_reason,
    service_record,
    notifications,
]


# --- the check ---------------------------------------------------------------------------------------


def describe(violations):
    """axe's findings, one block per rule, readable in a test report."""
    lines = []
    for violation in violations:
        lines.append(f"[{violation['impact']}] {violation['id']}: {violation['help']} ({violation['helpUrl']})")
        for node in violation["nodes"][:8]:
            lines.append(f"    at {' '.join(map(str, node['target']))}")
            lines.append(f"       {node['html'][:200]}")
            for summary_line in (node.get("failureSummary") or "").splitlines():
                lines.append(f"       {summary_line}")
        if len(violation["nodes"]) > 8:
            lines.append(f"    … and {len(violation['nodes']) - 8} more")
    return "\n".join(lines)


def run_axe(page):
    page.add_script_tag(url=AXE_URL)
    return page.evaluate(
        """async (tags) => {
            const results = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
            return results.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({target: n.target, html: n.html, failureSummary: n.failureSummary})),
            }));
        }""",
        WCAG_TAGS,
    )


@pytest.fixture
def checked_page(page, live_server):
    """The page, with axe-core served from the site's own origin and its console watched."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (make test does it).")
    page.route(f"**{AXE_URL}", lambda route: route.fulfill(path=str(AXE), content_type="text/javascript"))
    problems = []

    def on_console(message):
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.problems = problems
    return page


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("show", PAGES, ids=[p.__name__.replace("_", "-") for p in PAGES])
def test_customer_page_has_no_wcag_violations(checked_page, live_server, catalogue, tmp_path, settings, show, language):
    page = checked_page
    set_language(page.context, language, live_server.url)
    show(World(page=page, catalogue=catalogue, language=language, tmp_path=tmp_path, settings=settings))

    assert page.locator("html").get_attribute("lang") == language
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_count(1)
    if language == "zh-hans":
        assert CJK.search(heading.inner_text()), f"not in Chinese: {heading.inner_text()!r}"

    violations = run_axe(page)
    assert not violations, f"axe found {len(violations)} problem(s) on {page.url}:\n{describe(violations)}"
    assert not page.problems, "\n".join(page.problems)


def test_the_check_finds_a_violation(checked_page, live_server):
    """The check itself works: an image without a text alternative is reported."""
    page = checked_page
    page.goto("/")
    page.evaluate("""() => {
        const img = document.createElement("img");
        img.src = "/static/missing.png";
        document.querySelector("main").append(img);
    }""")
    violations = run_axe(page)
    assert "image-alt" in [v["id"] for v in violations], json.dumps(violations)[:500]
