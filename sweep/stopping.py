"""Ctrl-C and `kill` while a sweep starts, until Tune takes over (it catches SIGINT itself)."""
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """Turns SIGINT and SIGTERM into KeyboardInterrupt, and remembers them: a KeyboardInterrupt raised inside a
    library that swallows it (a bare `except:`, a finalizer) still stops the sweep at the next `check()`."""

    def __init__(self):
        self.received = None
        self.previous = {}

    def listen(self) -> None:
        """Install the handlers; again after ray.init, whose SIGTERM handler aborts the driver, and after Tune,
        which leaves its SIGINT handler behind."""
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set there
        for number in SIGNALS:
            self.previous.setdefault(number, signal.getsignal(number))
            signal.signal(number, self._stop)

    def _stop(self, number, frame):
        self.received = signal.Signals(number).name
        raise KeyboardInterrupt

    def check(self) -> None:
        if self.received:
            raise KeyboardInterrupt

    def restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
