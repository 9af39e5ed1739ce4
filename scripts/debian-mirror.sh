# Sourced by scripts/setup.sh and bench/pytorch-reference.sh: debian_mirror prints the Debian mirror this system's apt
# uses (not its security archive), so no registry host is written in the repository; nothing when none is found.
debian_mirror() {
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources
  elif [ -f /etc/apt/sources.list ]; then
    awk '/^deb / && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list
  fi
}
