"""The sandbox's child: put the containment in place, then run program.py in this process.

Run by llmbench.sandbox as `python -I -S _sandbox_child.py CONFIG` with the program's host
directory as cwd; in "namespaces" isolation it starts as the first process of new PID, mount,
network, IPC and UTS namespaces. It uses the standard library only (it never imports llmbench),
and it says "ready" on a pipe only once every containment step has succeeded, so a child that
failed half-way can never be scored as a model's answer.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys

libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 8, 32, 4096, 16384
# atime flags a locked mount (inside a user namespace) must keep when it is remounted
ATIME_FLAGS = {"noatime": 1024, "nodiratime": 2048, "relatime": 1 << 21, "strictatime": 1 << 24}
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE, PR_CAP_AMBIENT = 24, 38, 4, 47
# the devices a program may use; everything else in the host's /dev stays out of sight
DEVICES = ("null", "zero", "full", "random", "urandom")
DEV_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
}


class SetupError(Exception):
    """A containment step failed: the program must not run."""


def _check(result: int, what: str) -> None:
    if result != 0:
        raise SetupError(f"{what}: {os.strerror(ctypes.get_errno())}")


def mount(source: str, target: str, fstype: str | None = None, flags: int = 0, data: str = ""):
    encoded = [value.encode() if value else None for value in (source, target, fstype, data)]
    _check(libc.mount(encoded[0], encoded[1], encoded[2], flags, encoded[3]), f"mount {target}")


def mount_points() -> list[tuple[str, list[str]]]:
    points = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            points.append((fields[4].encode().decode("unicode_escape"), fields[5].split(",")))
    return points


def make_every_mount_read_only() -> None:
    """Remount every mount read-only, nosuid and nodev (a failure on / is fatal; a mount that
    cannot be remounted elsewhere is one the kernel keeps locked at least as strict)."""
    for point, options in mount_points():
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV
        flags |= MS_NOEXEC if "noexec" in options else 0
        flags |= sum(flag for name, flag in ATIME_FLAGS.items() if name in options)
        try:
            mount("", point, flags=flags)
        except SetupError:
            if point == "/":
                raise


def blocking_ancestor(path: str) -> str | None:
    """The outermost directory above `path` that others (the sandbox's uid) cannot enter."""
    parts = path.strip("/").split("/")[:-1]
    for depth in range(len(parts)):
        ancestor = "/" + "/".join(parts[: depth + 1])
        if not os.stat(ancestor).st_mode & 0o001:
            return ancestor
    return None


def expose_python() -> None:
    """Make this Python's installation reachable for an unprivileged uid when it sits under a
    private directory (/root/.pyenv): cover that directory with an empty read-only tmpfs and
    bind only the installation back, read-only. Whatever else it held stays hidden."""
    wanted = sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.prefix)})
    blocked = {path: blocking_ancestor(path) for path in wanted}
    blocked = {path: ancestor for path, ancestor in blocked.items() if ancestor}
    held = {path: os.open(path, os.O_PATH) for path in blocked}
    for ancestor in sorted(set(blocked.values())):
        mount("tmpfs", ancestor, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755")
    for path, fd in held.items():
        os.makedirs(path, exist_ok=True)
        mount(f"/proc/self/fd/{fd}", path, flags=MS_BIND | MS_REC)
        mount("", path, flags=MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.close(fd)
    for ancestor in set(blocked.values()):
        mount("", ancestor, flags=MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def fresh_tmp(config: dict, source: str) -> str:
    """One size- and inode-capped tmpfs on /tmp (the program's cwd is inside it): all it may
    write lives in memory charged to the sandbox and vanishes with the mount namespace."""
    limits = config["limits"]
    size = f"size={limits['tmp_bytes']},nr_inodes={limits['tmp_files']},mode=1777"
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, size)
    work = os.path.join("/tmp", config["work_name"], "work")
    os.makedirs(work, mode=0o755)
    os.makedirs("/tmp/.shm", mode=0o1777)
    with open(os.path.join(work, "program.py"), "w") as handle:
        handle.write(source)
    if config["uid"] is not None:
        os.chown(work, config["uid"], config["uid"])
    return work


def fresh_dev() -> None:
    """A new /dev holding only the harmless devices, bound from the host's (so /dev/null works
    although every other mount is nodev), the usual /dev/fd links, and /dev/shm in /tmp's cap."""
    held = {name: os.open(f"/dev/{name}", os.O_PATH) for name in DEVICES}
    mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,nr_inodes=64,mode=755")
    for name, fd in held.items():
        open(f"/dev/{name}", "w").close()
        mount(f"/proc/self/fd/{fd}", f"/dev/{name}", flags=MS_BIND)
        # the bind copies the host /dev's flags, made nodev above: devices must work here
        mount("", f"/dev/{name}", flags=MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC)
        os.close(fd)
    for name, target in DEV_LINKS.items():
        os.symlink(target, f"/dev/{name}")
    os.mkdir("/dev/shm")
    mount("/tmp/.shm", "/dev/shm", flags=MS_BIND)
    mount("", "/dev", flags=MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC)


def isolate_filesystem(config: dict, source: str) -> str:
    """Everything read-only but a capped tmpfs /tmp; a minimal /dev; a /proc of this PID
    namespace only (the host's is covered). Returns the program's working directory."""
    make_every_mount_read_only()
    work = fresh_tmp(config, source)
    fresh_dev()
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if config["uid"] is not None:
        expose_python()
    return work


def drop_privileges(uid: int | None) -> None:
    """No capabilities, ever again (bounding and ambient sets emptied, no_new_privs); as root,
    also become `uid`, a uid no other process has, so file permissions protect the host."""
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        last = int(handle.read())
    for cap in range(last + 1):
        _check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop capability bounding set")
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL; absent on old kernels
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    _check(libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    if uid is not None and (os.getresuid() != (uid,) * 3 or 0 in os.getresgid()):
        raise SetupError(f"still privileged after dropping to uid {uid}")


def block_sockets() -> None:
    """Weak isolation only: refuse Python-level sockets (ctypes can still make one)."""
    import _socket
    import socket

    def refuse(*args, **kwargs):
        raise PermissionError("network access is disabled in the sandbox")

    class NoSocket(_socket.socket):
        def __init__(self, *args, **kwargs):
            refuse()

    for module in (socket, _socket):
        module.socket = NoSocket
        for name in ("socketpair", "fromfd", "create_connection", "create_server"):
            if hasattr(module, name):
                setattr(module, name, refuse)


def set_limits(limits: dict) -> None:
    for name, value in (
        ("RLIMIT_CPU", limits["cpu_s"]),
        ("RLIMIT_AS", limits["memory_bytes"]),
        ("RLIMIT_FSIZE", limits["file_bytes"]),
        ("RLIMIT_NPROC", limits["processes"]),
        ("RLIMIT_NOFILE", 256),
        ("RLIMIT_CORE", 0),
    ):
        hard = value + 1 if name == "RLIMIT_CPU" else value
        resource.setrlimit(getattr(resource, name), (value, hard))


def contain(config: dict, source: str) -> str:
    """Every containment step, in order; returns the directory the program runs in."""
    if config["namespaces"]:
        work = isolate_filesystem(config, source)
    else:
        work = os.getcwd()
        prefixes = (os.path.realpath(p) for p in (sys.base_prefix, sys.prefix))
        ancestor = next(filter(None, map(blocking_ancestor, prefixes)), None)
        if ancestor and config["uid"] is not None:
            raise SetupError(
                f"weak isolation runs as uid {config['uid']}, which cannot enter {ancestor} to "
                "read this Python; use a Python installed where every user can read it"
            )
        block_sockets()
    set_limits(config["limits"])
    drop_privileges(config["uid"])
    return work


def wait_as_init() -> None:
    """The namespace's first process ignores signals it has no handler for (SIGXCPU included)
    and cannot be killed from inside, so the program runs in a child; this process only
    reports the child's status. It stays non-dumpable: the program cannot ptrace it."""
    child = os.fork()
    if child:
        status = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
        os._exit(status if status >= 0 else 128 - status)


def run_program(source: str) -> None:
    # setuid left the process non-dumpable, which hides its own /proc/self/fd from it
    libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    code = compile(source, "program.py", "exec")
    try:
        exec(code, {"__name__": "__main__", "__file__": "program.py"})
    except SystemExit:
        sys.stderr.write("the program called exit before its tests finished\n")
        status = 3
    except BaseException:
        import traceback

        traceback.print_exc()
        status = 1
    else:
        status = 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def main() -> None:
    config = json.loads(sys.argv[1])
    try:
        with open("program.py") as handle:
            source = handle.read()
        work = contain(config, source)
        os.chdir(work)
    except (OSError, SetupError) as error:
        sys.stderr.write(f"sandbox setup failed: {error}\n")
        sys.stderr.flush()
        os._exit(1)
    os.write(config["ready_fd"], b"ready")
    os.close(config["ready_fd"])
    if config["namespaces"]:
        wait_as_init()
    run_program(source)


if __name__ == "__main__":
    main()
