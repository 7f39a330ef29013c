"""What the gateway's answers mean (gateway contract, section 2), the CLI's exit codes, and the
dispatcher's pacing: retry_delay and RateLimiter."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from batchpay.config import Protocol, SendOptions
from batchpay.gateway.dispatch import RateLimiter, retry_delay
from batchpay.outcomes import (
    Answer,
    Failure,
    Outcome,
    Verdict,
    classify,
    exit_code,
    is_systemic,
    placed_outcome,
)

DEFAULT = Protocol()
CUSTOM_DUPLICATE = Protocol(duplicate_codes=frozenset({"2001"}))


def envelope(code: str, http_status: int = 200, **fields: str) -> Answer:
    return Answer(http_status=http_status, code=code, has_envelope=True, **fields)


# --- classify ----------------------------------------------------------------------------

CLASSIFY_CASES = [
    # Not processed: retry later.
    pytest.param(Answer(http_status=429), DEFAULT, Verdict.RETRY, id="429-no-envelope"),
    pytest.param(Answer(http_status=503), DEFAULT, Verdict.RETRY, id="503-no-envelope"),
    pytest.param(
        Answer(
            http_status=429, retry_after=2.0, failure=Failure.UNREADABLE, error="unreadable body"
        ),
        DEFAULT,
        Verdict.RETRY,
        id="429-unreadable-body-with-retry-after",
    ),
    pytest.param(envelope("9999", http_status=429), DEFAULT, Verdict.RETRY, id="429-with-envelope"),
    pytest.param(
        envelope("0000", http_status=503), DEFAULT, Verdict.RETRY, id="503-with-0000-envelope"
    ),
    pytest.param(
        Answer(failure=Failure.CONNECT, error="connect: Connection refused"),
        DEFAULT,
        Verdict.RETRY,
        id="connect-refused",
    ),
    pytest.param(
        Answer(failure=Failure.CONNECT, error="connect: Name or service not known"),
        DEFAULT,
        Verdict.RETRY,
        id="connect-dns-failure",
    ),
    # The order may exist: unknown.
    pytest.param(Answer(http_status=500), DEFAULT, Verdict.UNKNOWN, id="500"),
    pytest.param(Answer(http_status=502), DEFAULT, Verdict.UNKNOWN, id="502"),
    pytest.param(Answer(http_status=504), DEFAULT, Verdict.UNKNOWN, id="504"),
    pytest.param(
        envelope("1001", http_status=500), DEFAULT, Verdict.UNKNOWN, id="500-with-error-envelope"
    ),
    pytest.param(
        envelope("0000", http_status=502), DEFAULT, Verdict.UNKNOWN, id="502-with-0000-envelope"
    ),
    pytest.param(
        Answer(failure=Failure.TIMEOUT, error="timeout"), DEFAULT, Verdict.UNKNOWN, id="timeout"
    ),
    pytest.param(
        Answer(failure=Failure.DROPPED, error="connection: ServerDisconnectedError"),
        DEFAULT,
        Verdict.UNKNOWN,
        id="connection-reset",
    ),
    pytest.param(
        Answer(failure=Failure.DROPPED, error="connection: ClientOSError"),
        DEFAULT,
        Verdict.UNKNOWN,
        id="client-os-error",
    ),
    pytest.param(
        Answer(http_status=200, failure=Failure.UNREADABLE, error="unreadable body"),
        DEFAULT,
        Verdict.UNKNOWN,
        id="200-unreadable-body",
    ),
    pytest.param(
        Answer(http_status=200, has_envelope=False),
        DEFAULT,
        Verdict.UNKNOWN,
        id="200-no-envelope",
    ),
    pytest.param(Answer(), DEFAULT, Verdict.UNKNOWN, id="no-answer-at-all"),
    # Refused by something in front of the gateway.
    pytest.param(Answer(http_status=400), DEFAULT, Verdict.REFUSED, id="400-no-envelope"),
    pytest.param(Answer(http_status=404), DEFAULT, Verdict.REFUSED, id="404-no-envelope"),
    pytest.param(Answer(http_status=403), DEFAULT, Verdict.REFUSED, id="403-no-envelope"),
    # An envelope was read.
    pytest.param(envelope("0000"), DEFAULT, Verdict.PLACED, id="0000-placed"),
    pytest.param(
        envelope("0000", status="0015"), DEFAULT, Verdict.PLACED, id="0000-processing-placed"
    ),
    pytest.param(envelope("1002"), DEFAULT, Verdict.DUPLICATE, id="1002-duplicate-by-default"),
    pytest.param(envelope("2001"), DEFAULT, Verdict.REFUSED, id="2001-refused-by-default"),
    pytest.param(
        envelope("2001"), CUSTOM_DUPLICATE, Verdict.DUPLICATE, id="2001-duplicate-when-configured"
    ),
    pytest.param(
        envelope("1002"), CUSTOM_DUPLICATE, Verdict.REFUSED, id="1002-refused-when-not-configured"
    ),
    pytest.param(
        envelope("0000"), CUSTOM_DUPLICATE, Verdict.PLACED, id="0000-placed-with-custom-codes"
    ),
    pytest.param(envelope("1001"), DEFAULT, Verdict.REFUSED, id="bad-signature-refused"),
    pytest.param(envelope("9999"), DEFAULT, Verdict.REFUSED, id="other-code-refused"),
    pytest.param(envelope(""), DEFAULT, Verdict.REFUSED, id="empty-code-refused"),
    pytest.param(envelope("000"), DEFAULT, Verdict.REFUSED, id="near-miss-000-refused"),
    pytest.param(envelope("1002", http_status=400), DEFAULT, Verdict.DUPLICATE, id="400-1002"),
    pytest.param(envelope("1001", http_status=400), DEFAULT, Verdict.REFUSED, id="400-envelope"),
]


@pytest.mark.parametrize(("answer", "protocol", "expected"), CLASSIFY_CASES)
def test_classify_maps_each_answer_to_its_verdict(answer, protocol, expected):
    assert classify(answer, protocol) is expected


def test_an_untrusted_certificate_is_a_systemic_refusal_by_its_kind_not_its_words() -> None:
    tls = Answer(failure=Failure.TLS, error="tls: ClientConnectorCertificateError: self-signed")
    assert classify(tls, DEFAULT) is Verdict.REFUSED and is_systemic(tls, DEFAULT)
    # The same words without the kind: no answer at all, which may have placed the order.
    words = Answer(error=tls.error)
    assert classify(words, DEFAULT) is Verdict.UNKNOWN and not is_systemic(words, DEFAULT)
    refused_words = Answer(error="connect: Connection refused")
    assert classify(refused_words, DEFAULT) is Verdict.UNKNOWN


# --- placed_outcome ----------------------------------------------------------------------

PLACED_CASES = [
    pytest.param("0000", DEFAULT, Outcome.PAID, id="0000-paid"),
    pytest.param("0015", DEFAULT, Outcome.PROCESSING, id="0015-processing"),
    pytest.param("", DEFAULT, Outcome.PROCESSING, id="empty-status-processing"),
    # Issue 15: 0001 is the family's "partial payment", by default partial, not failed; a
    # gateway configured without it reads 0001 as failed, as before.
    pytest.param("0001", DEFAULT, Outcome.PARTIAL, id="0001-partial-by-default"),
    pytest.param(
        "0001",
        Protocol(partial_statuses=frozenset()),
        Outcome.FAILED,
        id="0001-failed-when-not-a-partial-status",
    ),
    pytest.param(
        "0007",
        Protocol(partial_statuses=frozenset({"0007"})),
        Outcome.PARTIAL,
        id="0007-partial-when-configured",
    ),
    pytest.param(
        "0001",
        Protocol(partial_statuses=frozenset({"0007"})),
        Outcome.FAILED,
        id="0001-failed-when-another-partial-status-is-configured",
    ),
    pytest.param("9999", DEFAULT, Outcome.FAILED, id="9999-failed"),
    pytest.param("0016", DEFAULT, Outcome.FAILED, id="0016-failed-by-default"),
    pytest.param(
        "0016",
        Protocol(processing_statuses=frozenset({"0015", "0016"})),
        Outcome.PROCESSING,
        id="0016-processing-when-configured",
    ),
    pytest.param(
        "0015",
        Protocol(processing_statuses=frozenset({"0016"})),
        Outcome.FAILED,
        id="0015-failed-when-not-configured",
    ),
    pytest.param(
        "",
        Protocol(processing_statuses=frozenset({"0016"})),
        Outcome.PROCESSING,
        id="empty-status-processing-with-custom-set",
    ),
    pytest.param(
        "0000",
        Protocol(processing_statuses=frozenset({"0016"})),
        Outcome.PAID,
        id="0000-paid-with-custom-set",
    ),
]


@pytest.mark.parametrize(("status", "protocol", "expected"), PLACED_CASES)
def test_placed_outcome_maps_data_status_to_outcome(status, protocol, expected):
    assert placed_outcome(status, protocol) is expected


# --- exit_code ---------------------------------------------------------------------------

Out = Outcome

EXIT_CASES = [
    pytest.param([], False, 0, id="no-rows"),
    pytest.param([Out.PAID], False, 0, id="all-paid"),
    pytest.param([Out.PROCESSING], False, 0, id="all-processing"),
    pytest.param([Out.PAID, Out.PROCESSING, Out.PAID], False, 0, id="paid-and-processing"),
    pytest.param([Out.PAID, Out.REJECTED], False, 3, id="one-rejected"),
    pytest.param([Out.PROCESSING, Out.FAILED], False, 3, id="one-failed"),
    pytest.param([Out.PAID, Out.UNKNOWN], False, 3, id="one-unknown"),
    pytest.param([Out.PAID, Out.INVALID], False, 3, id="one-invalid"),
    pytest.param([Out.REJECTED, Out.FAILED, Out.UNKNOWN, Out.INVALID], False, 3, id="all-bad"),
    pytest.param([Out.PAID, Out.PARTIAL], False, 3, id="one-partly-paid"),
    pytest.param([Out.PARTIAL, Out.PENDING], False, 4, id="pending-outranks-partial"),
    pytest.param([Out.PAID, Out.PENDING], False, 4, id="one-pending"),
    pytest.param([Out.PENDING], False, 4, id="all-pending"),
    pytest.param([Out.REJECTED, Out.PENDING], False, 4, id="pending-outranks-rejected"),
    pytest.param([Out.UNKNOWN, Out.PENDING], False, 4, id="pending-outranks-unknown"),
    pytest.param([Out.PAID], True, 4, id="stopped-all-paid"),
    pytest.param([Out.FAILED], True, 4, id="stopped-outranks-failed"),
    pytest.param([], True, 4, id="stopped-no-rows"),
]


@pytest.mark.parametrize(("outcomes", "stopped", "expected"), EXIT_CASES)
def test_exit_code_follows_the_cli_contract(outcomes, stopped, expected):
    assert exit_code(outcomes, stopped=stopped) == expected


def test_exit_code_accepts_a_generator():
    assert exit_code(o for o in [Out.PAID, Out.FAILED]) == 3


# --- retry_delay -------------------------------------------------------------------------

OPTIONS = SendOptions(backoff_base=0.5, backoff_cap=30.0)


def ceiling(retry: int, options: SendOptions = OPTIONS) -> float:
    return min(options.backoff_cap, options.backoff_base * 2**retry)


@pytest.mark.parametrize(
    ("retry", "expected_ceiling"),
    [
        pytest.param(0, 0.5, id="retry-0"),
        pytest.param(1, 1.0, id="retry-1"),
        pytest.param(2, 2.0, id="retry-2"),
        pytest.param(3, 4.0, id="retry-3"),
        pytest.param(5, 16.0, id="retry-5"),
        pytest.param(6, 30.0, id="retry-6-capped"),
        pytest.param(20, 30.0, id="retry-20-capped"),
    ],
)
def test_retry_delay_stays_between_half_ceiling_and_ceiling(retry, expected_ceiling):
    assert ceiling(retry) == expected_ceiling
    rng = random.Random(retry)
    for _ in range(200):
        delay = retry_delay(retry, None, OPTIONS, rng)
        assert expected_ceiling / 2 <= delay <= expected_ceiling


def test_retry_delay_grows_exponentially_until_the_cap():
    options = SendOptions(backoff_base=1.0, backoff_cap=1000.0)

    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    delays = [retry_delay(r, None, options, Top()) for r in range(6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]


def test_retry_delay_lower_bound_doubles_with_each_retry():
    options = SendOptions(backoff_base=1.0, backoff_cap=1000.0)

    class Bottom(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return a

    delays = [retry_delay(r, None, options, Bottom()) for r in range(5)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_retry_delay_never_exceeds_the_cap_for_huge_retry_counts():
    rng = random.Random(1)
    for retry in (30, 64, 200):
        delay = retry_delay(retry, None, OPTIONS, rng)
        assert 15.0 <= delay <= 30.0


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        pytest.param(10.0, 10.0, id="retry-after-above-backoff"),
        pytest.param(45.0, 45.0, id="retry-after-above-cap"),
        pytest.param(120.0, 120.0, id="retry-after-at-4x-cap"),
        pytest.param(500.0, 120.0, id="retry-after-beyond-4x-cap-is-limited"),
    ],
)
def test_retry_delay_honours_retry_after_up_to_four_times_the_cap(retry_after, expected):
    # retry 0: backoff in [0.25, 0.5], so the Retry-After decides.
    assert retry_delay(0, retry_after, OPTIONS, random.Random(7)) == expected


def test_retry_delay_keeps_backoff_when_retry_after_is_shorter():
    plain = retry_delay(4, None, OPTIONS, random.Random(3))
    with_header = retry_delay(4, 0.1, OPTIONS, random.Random(3))
    assert with_header == plain
    assert 4.0 <= with_header <= 8.0


def test_retry_delay_with_zero_retry_after_is_plain_backoff():
    assert retry_delay(2, 0.0, OPTIONS, random.Random(5)) == retry_delay(
        2, None, OPTIONS, random.Random(5)
    )


def test_retry_delay_is_never_below_retry_after_within_the_limit():
    rng = random.Random(11)
    for retry in range(10):
        for retry_after in (0.0, 0.3, 1.0, 7.5, 29.0, 60.0, 119.0):
            assert retry_delay(retry, retry_after, OPTIONS, rng) >= retry_after


def test_retry_delay_is_deterministic_with_a_seeded_random():
    first = [retry_delay(r, None, OPTIONS, random.Random(42)) for r in range(8)]
    second = [retry_delay(r, None, OPTIONS, random.Random(42)) for r in range(8)]
    assert first == second
    rng_a, rng_b = random.Random(99), random.Random(99)
    seq_a = [retry_delay(r % 7, None, OPTIONS, rng_a) for r in range(20)]
    seq_b = [retry_delay(r % 7, None, OPTIONS, rng_b) for r in range(20)]
    assert seq_a == seq_b


def test_retry_delay_has_jitter_across_seeds():
    delays = {retry_delay(5, None, OPTIONS, random.Random(seed)) for seed in range(20)}
    assert len(delays) > 1


# --- RateLimiter -------------------------------------------------------------------------


def test_rate_limiter_spaces_starts_at_the_given_rate():
    async def twenty_waits() -> float:
        limiter = RateLimiter(50)
        start = time.monotonic()
        for _ in range(20):
            await limiter.wait()
        return time.monotonic() - start

    elapsed = asyncio.run(twenty_waits())
    # 20 starts at 50/s: the first is immediate, the next 19 are 20 ms apart (0.38 s).
    assert elapsed >= 0.37
    assert elapsed < 5.0


def test_rate_limiter_spaces_concurrent_waiters():
    async def concurrent_waits() -> list[float]:
        limiter = RateLimiter(50)
        start = time.monotonic()
        stamps: list[float] = []

        async def one() -> None:
            await limiter.wait()
            stamps.append(time.monotonic() - start)

        await asyncio.gather(*(one() for _ in range(10)))
        return sorted(stamps)

    stamps = asyncio.run(concurrent_waits())
    assert stamps[-1] >= 0.17  # nine intervals of 20 ms


def test_rate_limiter_interval_is_one_over_rate():
    assert RateLimiter(50).interval == pytest.approx(0.02)
    assert RateLimiter(0.5).interval == pytest.approx(2.0)


def test_rate_limiter_without_rate_never_sleeps(monkeypatch):
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)

    async def many_waits() -> None:
        limiter = RateLimiter(None)
        for _ in range(1000):
            await limiter.wait()

    asyncio.run(many_waits())
    assert slept == []


def test_rate_limiter_with_rate_does_sleep(monkeypatch):
    # The same probe as above must see sleeps when a rate is set, so the None test can fail.
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)

    async def waits() -> None:
        limiter = RateLimiter(50)
        for _ in range(5):
            await limiter.wait()

    asyncio.run(waits())
    assert len(slept) >= 4
    assert all(0 < d <= 0.1 for d in slept)


def test_rate_limiter_without_rate_is_fast():
    async def many_waits() -> float:
        limiter = RateLimiter(None)
        start = time.monotonic()
        for _ in range(1000):
            await limiter.wait()
        return time.monotonic() - start

    assert asyncio.run(many_waits()) < 0.5
