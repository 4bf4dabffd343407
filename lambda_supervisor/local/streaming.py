"""A local invocation's answer read as it arrives, and ``invoke`` printing a stream live.

A function that streams its response (a generator handler) sends chunks long before it
finishes; a local caller should see each one then, as a caller on Lambda does, and still
get the whole answer at the end, a stream's error (in its trailers) included.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO, Generic, TypeVar

from lambda_supervisor.emulator import Chunk, Invocation, Outcome, ResponseStream, follow_stream

if TYPE_CHECKING:
    from lambda_supervisor.emulator import RuntimeAPIEmulator

Result = TypeVar("Result")


class InvocationStream(Generic[Result]):
    """One submitted invocation: iterate over it for the chunks of its stream as they arrive
    (none when the function answers buffered), then ``result()`` for the whole answer.

    ``result()`` reads what is left of the stream first, so it may be called at any time.
    ``TimeoutError`` (from either) when no runtime takes the event within ``start_timeout``.
    """

    def __init__(
        self,
        emulator: RuntimeAPIEmulator,
        invocation: Invocation,
        start_timeout: float | None,
        build_result: Callable[[Invocation, Outcome, bool], Result],
    ) -> None:
        self.emulator = emulator
        self.invocation = invocation
        self.start_timeout = start_timeout
        self.streamed = False
        self._build_result = build_result
        self._chunks = self._follow()

    def __iter__(self) -> Iterator[Chunk]:
        return self._chunks

    def _follow(self) -> Iterator[Chunk]:
        response = self.emulator.await_response(self.invocation, queue_timeout=self.start_timeout)
        if response is None:
            raise RuntimeError("the emulator stopped before the invocation finished")
        if isinstance(response, ResponseStream):
            self.streamed = True
            yield from follow_stream(self.emulator, self.invocation, response)

    def result(self) -> Result:
        """The answer (a stream's whole body, its error from the trailers), once it has ended."""
        for _ in self._chunks:
            pass
        outcome = self.emulator.await_outcome(self.invocation, queue_timeout=self.start_timeout)
        if outcome is None:
            raise RuntimeError("the emulator stopped before the invocation finished")
        return self._build_result(self.invocation, outcome, self.streamed)


class ChunkPrinter:
    """Writes each chunk of a stream to ``out`` (stdout's bytes) the moment it arrives, and a
    final newline when the stream did not end with one, as ``invoke`` prints a result."""

    def __init__(self, out: BinaryIO | None = None) -> None:
        self.out = out
        self._ends_line = False

    def write(self, chunk: Chunk) -> None:
        if chunk.data:
            self._write(chunk.data)
            self._ends_line = chunk.data.endswith(b"\n")

    def finish(self) -> None:
        if not self._ends_line:
            self._write(b"\n")

    def _write(self, data: bytes) -> None:
        out = self.out if self.out is not None else getattr(sys.stdout, "buffer", None)
        if out is None:  # a text-only stdout (replaced by a caller): as text, then
            sys.stdout.write(data.decode("utf-8", errors="replace"))
            sys.stdout.flush()
            return
        out.write(data)
        out.flush()
