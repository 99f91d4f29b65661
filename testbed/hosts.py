"""Separate hosts on one machine, for tests of the deployed topology: each host is a network namespace with its
own address on a private subnet (veth pairs to a bridge in a switch namespace) and its own mount namespace with a
private /tmp (Ray keeps its sockets and session there, so a process on another host cannot reach them through the
filesystem). Needs root (`ip netns`, `unshare -m`, `nsenter`).

The machine itself stays on the subnet too (OBSERVER), so a test can reach each host's services by address.
A host is held by one `sleep` process inside its namespaces; `Host.run` starts commands there (nsenter), and
`Host.kill` ends every process of the host (found by its mount namespace): what a power cut does, never `ray stop`,
which would end every Ray process on the machine.
"""

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SUBNET = "10.77.0"
CHECKOUT = Path(__file__).resolve().parents[1]  # its venv and code: what every host runs
OBSERVER = f"{SUBNET}.1"  # this machine's own address on the hosts' subnet


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass
class Host:
    name: str
    address: str
    holder: subprocess.Popen = field(repr=False)
    mount_namespace: str = field(repr=False)  # e.g. "mnt:[4026532681]": how its processes are told apart
    started: list = field(default_factory=list, repr=False)

    def run(self, command: list[str], env: dict | None = None, log=None, cwd: str = "/tmp") -> subprocess.Popen:
        """Start `command` on this host (its network, its /tmp), in `cwd` there; output to `log` (a path) if given,
        else to a pipe (text)."""
        out = open(log, "ab") if log else subprocess.PIPE
        process = subprocess.Popen(["nsenter", "-t", str(self.holder.pid), "-m", "-n", f"--wd={cwd}", "--",
                                    *command], env=env, stdout=out, stderr=subprocess.STDOUT, text=log is None)
        self.started.append(process)
        return process

    def processes(self) -> list[int]:
        """Every process living in this host's mount namespace (the holder included)."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/mnt") == self.mount_namespace:
                        found.append(int(entry))
                except OSError:
                    continue
        return found

    def kill(self) -> None:
        """The host goes away at once: every process of it is killed (SIGKILL)."""
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
        for process in [self.holder, *self.started]:
            process.kill()  # also one that left the namespace
            process.wait(timeout=60)


class Hosts:
    """`Hosts(["db", "head", ...])`: the hosts, up; `close()` ends their processes and removes the namespaces."""

    def __init__(self, names: list[str], prefix: str = "gp", shared: tuple[Path, ...] = (CHECKOUT,)):
        self.prefix, self.switch = prefix, f"{prefix}-switch"
        self.hosts: dict[str, Host] = {}
        self.names = names
        # folders every host sees as they are (the checkout and its venv), though one lie under the machine's /tmp,
        # which each host replaces by its own: bound aside before that, and back after
        self.kept = {path: Path(f"/run/{prefix}-keep{i}") for i, path in enumerate(shared)
                     if Path(tempfile.gettempdir()) in path.resolve().parents}
        self._remove_namespaces()  # left by a run that was killed before it could clean up
        # every host resolves the others by name, as compose's services do (bind-mounted over its /etc/hosts)
        self.hosts_file = f"/run/{prefix}-hosts"
        with open(self.hosts_file, "w") as out:
            out.write(f"127.0.0.1 localhost\n{''.join(f'{self.address(n)} {n}' + chr(10) for n in names)}")
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        # the machine itself (the test) reaches every host at its address, from OBSERVER on the same subnet
        _ip("link", "add", f"{prefix}obs", "type", "veth", "peer", "name", f"{prefix}obs1")
        _ip("link", "set", f"{prefix}obs1", "netns", self.switch)
        _ip("-n", self.switch, "link", "set", f"{prefix}obs1", "master", "br0", "up")
        _ip("addr", "add", f"{OBSERVER}/24", "dev", f"{prefix}obs")
        _ip("link", "set", f"{prefix}obs", "up")
        try:
            for name in names:
                self.hosts[name] = self._add(name)
        except BaseException:
            self.close()
            raise

    def address(self, name: str) -> str:
        return f"{SUBNET}.{10 + self.names.index(name)}"

    def _add(self, name: str) -> Host:
        address, number = self.address(name), 10 + self.names.index(name)
        namespace, inside, outside = f"{self.prefix}-{name}", f"{self.prefix}{number}a", f"{self.prefix}{number}b"
        _ip("netns", "add", namespace)
        _ip("link", "add", inside, "type", "veth", "peer", "name", outside)
        _ip("link", "set", inside, "netns", namespace)
        _ip("link", "set", outside, "netns", self.switch)
        _ip("-n", self.switch, "link", "set", outside, "master", "br0", "up")
        _ip("-n", namespace, "link", "set", inside, "name", "eth0")
        _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        for link in ("eth0", "lo"):
            _ip("-n", namespace, "link", "set", link, "up")
        _ip("-n", namespace, "route", "add", "default", "dev", "eth0")  # as a real host has: Ray finds its address
        aside = [f"mkdir -p {stash} && mount --bind {path} {stash}" for path, stash in self.kept.items()]
        back = [f"mkdir -p {path} && mount --bind {stash} {path}" for path, stash in self.kept.items()]
        steps = [*aside, f"mount -t tmpfs tmpfs {tempfile.gettempdir()}", *back,
                 f"mount --bind {self.hosts_file} /etc/hosts", "exec sleep infinity"]
        holder = subprocess.Popen(["ip", "netns", "exec", namespace, "unshare", "-m", "--propagation", "private",
                                   "sh", "-c", " && ".join(steps)])
        # until the holder is `sleep`: only then is its mount namespace the final one (`ip netns exec` makes one of
        # its own first, to remount /sys; taken too early, `kill` would find none of the host's processes)
        for _ in range(600):
            with open(f"/proc/{holder.pid}/cmdline", "rb") as cmdline:
                if cmdline.read().startswith(b"sleep\0"):
                    return Host(name, address, holder, os.readlink(f"/proc/{holder.pid}/ns/mnt"))
            if holder.poll() is not None:
                break
            time.sleep(0.05)
        holder.kill()
        raise RuntimeError(f"host {name}: its namespaces did not come up")

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def _remove_namespaces(self) -> None:
        for name in [*(f"{self.prefix}-{n}" for n in self.names), self.switch]:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "link", "del", f"{self.prefix}obs"], capture_output=True)  # gone with its peer, or now

    def close(self) -> None:
        for host in self.hosts.values():
            host.kill()
        self._remove_namespaces()
        if os.path.exists(self.hosts_file):
            os.remove(self.hosts_file)
        for stash in self.kept.values():
            if stash.is_dir():
                stash.rmdir()  # bound only inside the hosts' mount namespaces: empty here
