"""Running a pool's daemon as a user service (systemd on Linux, launchd on macOS).

`units` renders the service files (pure), `commands` runs the service manager's
programs through an injectable runner, and `manager` installs, removes and reports.
"""
