"""Lesson 08's load-test arithmetic (xdplab.lessons.qos.LoadTest), on made-up samples: no lab."""
from xdplab.lessons.qos import LoadTest


def made_up(rtts, queue, link_rate=1_250_000, seconds=2.0):
    """A finished LoadTest holding these pings [(left at s, RTT ms)] and queue samples
    [(at s, backlog bytes)], at `link_rate` bytes per second."""
    test = LoadTest.__new__(LoadTest)
    test.rtts, test.queue, test.link_rate, test.seconds = rtts, queue, link_rate, seconds
    return test


def test_each_ping_is_paired_with_the_queue_it_found():
    # the queue swings between 50 and 125 KB (40 and 100 ms at 1.25 MB/s); the answered pings
    # left when it was low: what they found is 40 ms, while the queue's median is higher
    queue = [(t / 20, 62_500 if t % 4 == 0 else 125_000) for t in range(40)]
    rtts = [(t / 20 + 0.004, 41.0) for t in range(0, 40, 4)]
    test = made_up(rtts, queue)
    assert test.queue_delay_at_pings == 50.0
    assert test.median_queue_delay == 100.0
    assert abs(test.median_rtt - test.queue_delay_at_pings) < 0.25 * test.median_rtt


def test_the_nearest_sample_on_either_side_and_nothing_without_data():
    test = made_up([(0.26, 10.0), (0.74, 10.0), (5.0, 10.0)], [(0.25, 0), (0.3, 125_000), (0.75, 12_500)])
    # 0.26 is nearest to 0.25 (0 ms), 0.74 to 0.75 (10 ms), 5.0 to the last sample (10 ms)
    assert test.queue_delay_at_pings == 10.0
    assert made_up([], [(0.1, 5)]).queue_delay_at_pings is None
    assert made_up([(0.1, 3.0)], []).queue_delay_at_pings is None
