#!/usr/bin/env bash
# After `make install` / `make uninstall` (without DESTDIR): tell the dynamic
# loader, or tell the user what to do.
#
#   loader.sh install|uninstall LIBDIR LDCONFIG
#
# * LIBDIR is a directory the loader searches (/etc/ld.so.conf, the built-in
#   ones): run LDCONFIG to refresh its cache when we may (root), else say so.
# * LIBDIR is not one (a custom PREFIX): ldconfig would not help; print how
#   programs find libtinymls.so.0 there (rpath, LD_LIBRARY_PATH, or a file
#   in /etc/ld.so.conf.d/); after uninstall, nothing to say.
# Never fails the install: the files are in place either way.
set -u
mode=$1
libdir=$(realpath -m "$2")
ldconfig=$3

if ! command -v "$ldconfig" >/dev/null 2>&1; then
    echo "note: $ldconfig not found: make sure the dynamic loader finds $libdir/libtinymls.so.0"
    exit 0
fi

# -N -X -v: print the directories ldconfig would scan, change nothing.
known=no
while IFS= read -r dir; do
    [ "$(realpath -m "$dir")" = "$libdir" ] && known=yes
done < <("$ldconfig" -N -X -v 2>/dev/null | sed -n 's|^\(/[^:]*\):.*|\1|p')

if [ "$known" = yes ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "$ldconfig"
        "$ldconfig" || echo "warning: $ldconfig failed; run it by hand"
    else
        echo "note: run $ldconfig as root to refresh the loader's cache for $libdir"
    fi
elif [ "$mode" = install ]; then
    cat <<EOF
note: $libdir is not in the dynamic loader's search path. Programs linked
      against libtinymls.so find it at run time if they are linked with
      -Wl,-rpath,$libdir, or run with LD_LIBRARY_PATH=$libdir, or once the
      directory is listed in /etc/ld.so.conf.d/ (then run ldconfig as root).
EOF
fi
exit 0
