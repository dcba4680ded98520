#!/usr/bin/env bash
# Install Tessera as a Debian / Raspberry Pi OS service, from this checkout.
#
#   sudo tools/install.sh [--roles all|"engine kiosk ..."] [--device NAME] [--dry-run]
#   sudo tools/install.sh --root DIR ...     into DIR (an image, a test root): no apt,
#                                            no broker restart, units enabled offline
#   sudo tools/install.sh --uninstall [--purge]   units and venv gone; config and state
#                                            kept unless --purge
#   sudo tools/install.sh --sim ...          rehearse without hardware: the same units run
#                                            against tessera-sim.service (sim hardware)
#
# Idempotent: every step checks first and says "ok" when there is nothing to do, so a
# second run changes nothing. --dry-run prints every step and changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD

ROOT="" ROLES="all" DEVICE="" DRY=0 UNINSTALL=0 PURGE=0 SIM=0
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=${2%/}; shift 2 ;;
        --roles) ROLES=$2; shift 2 ;;
        --device) DEVICE=$2; shift 2 ;;
        --dry-run) DRY=1; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        --purge) PURGE=1; shift ;;
        --sim) SIM=1; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
for r in $ROLES; do
    case "$r" in all|engine|kiosk|counter|display) ;;
        *) echo "install.sh: --roles: unknown role '$r'; valid: all engine kiosk counter display" >&2
           exit 2 ;;
    esac
done
if [ "$(id -u)" -ne 0 ] && [ $DRY -eq 0 ]; then
    echo "install.sh: run as root (sudo), or with --dry-run to see the steps" >&2; exit 2
fi

OPT=$ROOT/opt/tessera VENV=$ROOT/opt/tessera/.venv ETC=$ROOT/etc/tessera STATE=$ROOT/var/lib/tessera
UNITDIR=$ROOT/etc/systemd/system UDEV=$ROOT/etc/udev/rules.d
APT_PACKAGES=(python3 python3-venv mosquitto espeak-ng fonts-wqy-microhei alsa-utils)

step() { printf '%-44s ' "$1"; }
ok() { echo "ok"; }
act() {  # act DESCRIPTION CMD...: run (or, dry, only say) a change
    if [ $DRY -eq 1 ]; then echo "would: $1"; else "${@:2}"; echo "done: $1"; fi
}
prefix=()
[ -n "$ROOT" ] && prefix=(--prefix "$ROOT")

if [ $UNINSTALL -eq 1 ]; then
    step "units"
    if ls "$UNITDIR"/tessera@.service >/dev/null 2>&1; then
        act "disable and remove tessera@ units" bash -c "
            systemctl ${ROOT:+--root=$ROOT} disable 'tessera@*' >/dev/null 2>&1 || true
            systemctl ${ROOT:+--root=$ROOT} disable tessera-sim.service >/dev/null 2>&1 || true
            rm -rf '$UNITDIR/tessera@.service' '$UNITDIR/tessera@.service.d' \
                '$UNITDIR/tessera-sim.service'
            find '$UNITDIR' -name 'tessera@*' -delete"
    else ok; fi
    step "venv $OPT"
    if [ -d "$OPT" ]; then act "remove $OPT" rm -rf "$OPT"; else ok; fi
    step "config and state"
    if [ $PURGE -eq 1 ]; then act "remove $ETC $STATE" rm -rf "$ETC" "$STATE"; else
        echo "kept ($ETC, $STATE; --purge removes them)"; fi
    exit 0
fi

# 1. Debian packages (not into another root: that is the image builder's job)
step "debian packages"
if [ -n "$ROOT" ]; then echo "skipped (--root)"; else
    missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then ok; else
        act "apt-get install ${missing[*]}" bash -c \
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing[*]}"
    fi
fi

# 2. the gpio group (Raspberry Pi OS has it, Debian does not) and its udev rule
step "group gpio"
if grep -q "^gpio:" "$ROOT/etc/group" 2>/dev/null; then ok
else act "groupadd --system gpio" groupadd "${prefix[@]}" --system gpio; fi
step "udev rule for /dev/gpiochip*"
RULE='SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"'
if [ "$(cat "$UDEV/60-tessera-gpio.rules" 2>/dev/null)" = "$RULE" ]; then ok; else
    act "write $UDEV/60-tessera-gpio.rules" bash -c \
        "mkdir -p '$UDEV' && printf '%s\n' '$RULE' > '$UDEV/60-tessera-gpio.rules'"
fi
step "udev rule: printer as /dev/tessera-printer"
PRULE='SUBSYSTEM=="tty", ENV{ID_VENDOR_ID}=="04b8", SYMLINK+="tessera-printer"  # Epson; edit the vendor id for another make'
if [ "$(cat "$UDEV/61-tessera-printer.rules" 2>/dev/null)" = "$PRULE" ]; then ok; else
    act "write $UDEV/61-tessera-printer.rules" bash -c \
        "mkdir -p '$UDEV' && printf '%s\n' '$PRULE' > '$UDEV/61-tessera-printer.rules'"
fi

# 3. the service user, in the groups the roles need
step "user tessera"
if grep -q "^tessera:" "$ROOT/etc/passwd" 2>/dev/null; then ok; else
    act "useradd --system --user-group tessera" useradd "${prefix[@]}" --system --user-group \
        --home-dir /var/lib/tessera \
        --no-create-home --shell /usr/sbin/nologin tessera
fi
for g in gpio dialout audio; do
    step "tessera in group $g"
    if grep -q "^$g:" "$ROOT/etc/group" 2>/dev/null && \
            grep "^$g:" "$ROOT/etc/group" | cut -d: -f4 | tr ',' '\n' | grep -qx tessera; then ok
    elif ! grep -q "^$g:" "$ROOT/etc/group" 2>/dev/null; then echo "skipped (no group $g)"
    else act "usermod -aG $g tessera" usermod "${prefix[@]}" -aG "$g" tessera; fi
done

# 4. a venv under /opt/tessera (PEP 668: never the system Python), pinned
# a kiosk prints (Pillow, python-escpos, segno); every other role needs only the base
EXTRAS=""
[[ " $ROLES " =~ " all " || " $ROLES " =~ " kiosk " ]] && EXTRAS="[kiosk]"
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' firmware/_version.py)
step "venv $VENV (tessera $VERSION)"
have=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("tessera"))' \
       2>/dev/null || true)
if [ "$have" = "$VERSION" ] && [ -f "$OPT/installed-from" ] && \
        [ "$(cat "$OPT/installed-from")" = "$(git -C "$SRC" rev-parse HEAD 2>/dev/null || echo "$SRC")" ]; then ok
else
    act "python3 -m venv + pip install (tools/constraints.txt)" bash -c "
        set -e; mkdir -p '$OPT'; [ -x '$VENV/bin/python' ] || python3 -m venv '$VENV'
        '$VENV/bin/pip' install -q -c '$SRC/tools/constraints.txt' --upgrade pip
        '$VENV/bin/pip' install -q -c '$SRC/tools/constraints.txt' '$SRC$EXTRAS'
        git -C '$SRC' rev-parse HEAD > '$OPT/installed-from' 2>/dev/null || echo '$SRC' > '$OPT/installed-from'"
fi

# 5. config, env file and state
step "$ETC/branch.toml"
if [ -f "$ETC/branch.toml" ]; then echo "ok (kept)"; else
    act "copy examples/bank.toml (storage.dir = /var/lib/tessera): edit it" bash -c "
        install -d -m 0750 '$ETC'
        sed 's|^dir = .*|dir = \"/var/lib/tessera\"|' '$SRC/examples/bank.toml' > '$ETC/branch.toml'
        chmod 0640 '$ETC/branch.toml'"
fi
step "$ETC/tessera.env"
ENVLINE="TESSERA_DEVICE=${DEVICE}"
if [ -f "$ETC/tessera.env" ] && { [ -z "$DEVICE" ] || grep -qx "$ENVLINE" "$ETC/tessera.env"; }; then
    ok
else
    act "write $ETC/tessera.env ($ENVLINE)" bash -c "
        install -d -m 0750 '$ETC'; printf '# this Pi: its name in branch.toml\n%s\n' '$ENVLINE' \
            > '$ETC/tessera.env'"
fi
step "$STATE"
if [ -d "$STATE" ]; then ok; else act "create $STATE (0750)" install -d -m 0750 "$STATE"; fi
step "ownership of $ETC and $STATE"
uid=$(grep '^tessera:' "$ROOT/etc/passwd" 2>/dev/null | cut -d: -f3 || true)
gid=$(grep '^tessera:' "$ROOT/etc/passwd" 2>/dev/null | cut -d: -f4 || true)
if [ -n "$uid" ] && [ -d "$STATE" ] && [ "$(stat -c %u "$STATE")" = "$uid" ] && \
        [ "$(stat -c %g "$ETC")" = "$gid" ]; then ok
else
    act "chown tessera $STATE, chgrp tessera $ETC" bash -c "
        chown -R '${uid:-tessera}:${gid:-tessera}' '$STATE'; chgrp -R '${gid:-tessera}' '$ETC'"
fi

# 6. the broker files, where Debian's mosquitto loads them (engine Pi only)
step "broker files"
if [ -n "$ROOT" ] || ! [[ " $ROLES " =~ " all " || " $ROLES " =~ " engine " ]]; then
    if [ -n "$ROOT" ]; then echo "skipped (--root)"; else echo "skipped (no engine role)"; fi
elif [ -L /etc/mosquitto/conf.d/tessera.conf ]; then ok
else
    act "tessera broker config + conf.d link + restart mosquitto" bash -c "
        '$VENV/bin/tessera' broker config --config '$ETC/branch.toml' --out /etc/mosquitto/tessera
        ln -sf /etc/mosquitto/tessera/tessera.conf /etc/mosquitto/conf.d/tessera.conf
        systemctl restart mosquitto"
fi

# 7. the unit, enabled for this Pi's roles
step "$UNITDIR/tessera@.service"
if cmp -s systemd/tessera@.service "$UNITDIR/tessera@.service"; then ok; else
    act "install the unit" bash -c "install -d '$UNITDIR' && \
        install -m 0644 systemd/tessera@.service '$UNITDIR/tessera@.service'"
fi
if [ $SIM -eq 1 ]; then
    step "$UNITDIR/tessera-sim.service (+ drop-in)"
    if cmp -s systemd/tessera-sim.service "$UNITDIR/tessera-sim.service" && \
            cmp -s systemd/tessera@.service.d/50-sim.conf "$UNITDIR/tessera@.service.d/50-sim.conf"
    then ok; else
        act "install tessera-sim.service and tessera@.service.d/50-sim.conf" bash -c "
            install -d '$UNITDIR/tessera@.service.d'
            install -m 0644 systemd/tessera-sim.service '$UNITDIR/tessera-sim.service'
            install -m 0644 systemd/tessera@.service.d/50-sim.conf \
                '$UNITDIR/tessera@.service.d/50-sim.conf'"
    fi
    step "tessera-sim enabled"
    if [ -L "$UNITDIR/multi-user.target.wants/tessera-sim.service" ]; then ok; else
        act "systemctl enable tessera-sim" systemctl ${ROOT:+--root="$ROOT"} enable \
            tessera-sim.service --quiet
    fi
fi
for r in $ROLES; do
    step "tessera@$r enabled"
    if [ -L "$UNITDIR/multi-user.target.wants/tessera@$r.service" ]; then ok; else
        act "systemctl enable tessera@$r" systemctl ${ROOT:+--root="$ROOT"} enable \
            "tessera@$r.service" --quiet
    fi
done
[ -z "$ROOT" ] && [ $DRY -eq 0 ] && systemctl daemon-reload 2>/dev/null || true
echo "install.sh: edit $ETC/branch.toml, then: systemctl restart 'tessera@*'"
