# Sourced by the scripts/ci-install-*.sh scripts (not one of them, so .ci/run does not run it
# on its own): `apt_install PACKAGE...` installs Debian packages without their recommends,
# through sudo when not root.

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
    $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >/dev/null
}
