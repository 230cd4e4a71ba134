"""PutMedia acknowledgements: brace matching over any split of the stream, codes, fatality."""

from __future__ import annotations

from framescope.kvs.acks import Ack, AckParser, error_name, is_fatal

STREAM = (
    b'{"EventType":"BUFFERING","FragmentTimecode":1732012345678}'
    b'{"EventType":"RECEIVED","FragmentTimecode":1732012345678,"FragmentNumber":"9134"}\n'
    b'  {"EventType":"ERROR","FragmentTimecode":1732012347678,"ErrorId":4002,'
    b'"Note":"a } and a { in a string, and an escaped \\" quote"}'
)


def test_acks_are_found_by_matching_braces_however_the_stream_is_split() -> None:
    expected = [
        Ack("BUFFERING", 1732012345678),
        Ack("RECEIVED", 1732012345678, "9134"),
        Ack("ERROR", 1732012347678, None, 4002),
    ]
    assert AckParser().feed(STREAM) == expected
    for size in (1, 2, 7, 33):
        parser, found = AckParser(), []
        for at in range(0, len(STREAM), size):
            found.extend(parser.feed(STREAM[at : at + size]))
        assert found == expected, size


def test_malformed_and_oversized_objects_are_skipped_and_counted() -> None:
    parser = AckParser(max_object=100)
    assert parser.feed(b'{"EventType": oops}{"EventType":"IDLE"}') == [Ack("IDLE")]
    assert parser.malformed == 1
    assert parser.feed(b"{" + b'"x":"' + b"a" * 200 + b'"}{"EventType":"PERSISTED"}') == [
        Ack("PERSISTED")
    ]
    assert parser.malformed == 2
    assert parser.feed(b'[1, 2]\n{"EventType":"received"}') == [Ack("RECEIVED")]


def test_error_codes_have_names_and_only_unrecoverable_ones_are_fatal() -> None:
    assert error_name(4008) == "STREAM_NOT_ACTIVE"
    assert error_name(4999) == "error 4999"
    assert is_fatal(4008) and is_fatal(4500) and is_fatal(4506)
    assert not any(is_fatal(code) for code in (4000, 4001, 4002, 4003, 4004, 5000, 5001))
