"""The ``obslab`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from obslab.doctor import run_doctor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="obslab", description="obslab lab tools")
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser("doctor", help="send a probe through the lab and follow every hop, then "
                                                "list the alerts firing")
    doctor.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each hop")
    doctor.add_argument("--not-running", default="", metavar="SERVICES",
                        help="comma-separated lab services that do not run on this machine (tempo, loki, "
                             "grafana where their official images are absent): reported, not failed; by "
                             "default the doctor asks the engine (or what `obslab lab up` recorded)")
    doctor.add_argument("--skip", action="append", default=[], choices=["grafana"],
                        help="older spelling of --not-running grafana")
    doctor.add_argument("--service", metavar="NAME",
                        help="why don't I see my service: what the lab received from NAME, and the causes it can see")
    lab = commands.add_parser("lab", help="run the lab from the installed package: up, down, status, logs [service]")
    lab.add_argument("action", choices=["up", "down", "status", "logs"])
    lab.add_argument("service", nargs="?", help="with logs: one service's logs")
    lab.add_argument("--env-file", type=Path, help="the lab's env file (default: .env in ~/.config/obslab, "
                                                   "or $OBSLAB_HOME; made from .env.example on first run)")
    lab.add_argument("--volumes", action="store_true", help="with down: also remove the lab's data")
    lab.add_argument("--follow", "-f", action="store_true", help="with logs: keep following")
    docs = commands.add_parser("settings-docs",
                               help="rewrite the generated settings table of docs/settings.md and block of .env.example")
    docs.add_argument("readme", nargs="?", default="docs/settings.md")
    docs.add_argument("env_example", nargs="?", default=".env.example")
    args = parser.parse_args(argv)
    if args.command == "settings-docs":
        from obslab.settings import write

        write(args.readme, args.env_example)
        return 0
    if args.command == "lab":
        from obslab.lab import command

        env_file = args.env_file or (command.user_dir() / ".env" if args.action == "up" else command.default_env_file())
        if args.action == "up":
            return command.up(env_file)
        if args.action == "down":
            return command.down(env_file, volumes=args.volumes)
        if args.action == "status":
            return command.status(env_file)
        return command.logs(env_file, args.service, follow=args.follow)
    if args.not_running or args.skip:
        not_running: tuple[str, ...] | None = tuple(sorted(
            {name.strip() for name in args.not_running.split(",") if name.strip()} | set(args.skip)))
    else:
        not_running = None  # the doctor finds out from the engine, or what `obslab lab up` recorded
    return run_doctor(timeout=args.timeout, not_running=not_running, service=args.service)


if __name__ == "__main__":
    sys.exit(main())
