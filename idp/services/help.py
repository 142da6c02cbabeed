"""Answers to the problems residents run into most, in plain words, searchable with the services
directory's search."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from idp.services import directory


@dataclass(frozen=True)
class HelpTopic:
    slug: str
    title: object  # a lazy translation
    answer: tuple  # paragraphs (lazy translations)
    keywords: str

    @property
    def name(self) -> str:
        return str(self.title)

    @property
    def words(self) -> frozenset:
        return directory.words_of(" ".join([str(self.title), *map(str, self.answer), self.keywords]))


TOPICS = (
    HelpTopic("no-email", _l("I did not get the email"), (
        _l("Emails can take a few minutes. Look in your spam or junk folder too."),
        _l("Check that you typed your email address correctly. On the sign-in page you can ask for a new link."),
        _l("Still nothing after 15 minutes? Contact us (see Contact) and tell us the address you used."),
    ), "email mail verification link confirm spam junk not received missing"),
    HelpTopic("no-sms", _l("I did not get the text message (SMS)"), (
        _l("Text messages can take a minute. Make sure your phone has signal and is not full of messages."),
        _l("Check the number we show you. Ask for a new code on the same page; the newest code is the one that works."),
        _l("If it still does not come, choose another way to confirm it is you, such as your authenticator app or a recovery code."),
    ), "sms text message code phone cellphone mobile not received one-time"),
    HelpTopic("forgot-password", _l("I forgot my password"), (
        _l("On the sign-in page, choose \"Forgot your password?\" and enter your email address."),
        _l("We email you a link that works for one hour. Open it and choose a new password."),
    ), "password forgot forgotten reset change login sign in locked"),
    HelpTopic("lost-phone", _l("I lost my phone with my authenticator app or passkey"), (
        _l("Sign in with your password, then use one of the recovery codes you saved when you set up the app or passkey."),
        _l("Once you are in, go to My account, Sign-in and security: remove the lost phone and add your new one."),
        _l("No recovery codes? Contact us: after we check who you are, we can remove your second sign-in method."),
    ), "lost stolen phone authenticator app passkey recovery code second factor mfa new phone"),
    HelpTopic("link-account", _l("How do I link my municipal account?"), (
        _l("You need the account number and the linking PIN printed on a recent bill, or the account holder's ID number."),
        _l("Go to My account, My municipal accounts, Link an account. If you are a tenant or an agent, you can send a document for the city to check instead."),
    ), "link municipal account rates bill number pin tenant owner agent property"),
    HelpTopic("which-department", _l("Which department does what?"), (
        _l("Bills and payments: rates, water, electricity and refuse accounts, statements and payments."),
        _l("Permits and licences: building plans, events and business trading."),
        _l("Report a problem: potholes, water leaks, burst pipes, streetlights, refuse, sewage and noise."),
        _l("Programs and events: workshops, community meetings and city programs."),
    ), "department which who billing permits complaints report problem programs services"),
    HelpTopic("close-account", _l("How do I close my account?"), (
        _l("Go to My account, Close my account. You confirm with your password, and every city service you use signs you out."),
        _l("You can change your mind: reset your password within the period shown on that page and your account opens again."),
    ), "close delete account deactivate remove stop leave"),
)


def find(slug: str) -> HelpTopic | None:
    return next((topic for topic in TOPICS if topic.slug == slug), None)


def search(query: str) -> list[HelpTopic]:
    return directory.rank(query, list(TOPICS))
