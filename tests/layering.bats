#!/usr/bin/env bats
# The layering of lib/ (README, "The tree"): each folder's README says, on
# a line "May include: ...", which other folders its files may include;
# every #include "..." of a lib/ file names a header of its own folder
# ("x.h") or of a folder it may include ("base/x.h"), never cmd/ or a path
# out of lib/; no file lies outside a folder; the declared graph has no
# cycle.  violations is tested on a synthetic tree first, so that the
# check of the real one cannot pass by finding nothing.

load test_helper

TOP=$(cd "$BATS_TEST_DIRNAME/.." && pwd)

# violations LIBDIR: one line for each breach of the layering
violations() {
	local lib=$1 f d allowed n line inc folder below
	for f in "$lib"/*; do
		[ -f "$f" ] && [ "${f##*/}" != README.md ] &&
			echo "$f: outside a folder"
	done
	for d in "$lib"/*/; do
		d=${d%/}
		[ -f "$d/README" ] || { echo "$d: no README"; continue; }
		grep -q '^May include:' "$d/README" ||
			echo "$d/README: no 'May include:' line"
	done
	# the declared graph: tsort fails on a loop
	for d in "$lib"/*/; do
		d=${d%/}
		read -ra below < <(sed -n 's/^May include: *//p' "$d/README" 2> /dev/null)
		for folder in "${below[@]}"; do
			echo "$folder ${d##*/}"
		done
	done | tsort > /dev/null 2>&1 || echo "$lib: the folders' 'May include' lines make a loop"
	for f in "$lib"/*/*.[ch]; do
		[ -f "$f" ] || continue
		d=$(dirname "$f")
		allowed=" ${d##*/} $(sed -n 's/^May include: *//p' "$d/README" 2> /dev/null) "
		n=0
		while IFS= read -r line; do
			n=$((n + 1))
			[[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]*)\" ]] || continue
			inc=${BASH_REMATCH[1]}
			case $inc in
			*/*)
				folder=${inc%%/*}
				if [ ! -d "$lib/$folder" ] || [ "$folder" = . ] || [ "$folder" = .. ]; then
					echo "$f:$n: includes $inc, not a header of lib/"
				elif [[ $allowed != *" $folder "* ]]; then
					echo "$f:$n: includes $inc: ${d##*/} may not include $folder"
				elif [ "$folder" = "${d##*/}" ]; then
					echo "$f:$n: includes $inc: a header of its own folder is \"${inc#*/}\""
				elif [ ! -f "$lib/$inc" ]; then
					echo "$f:$n: includes $inc, which does not exist"
				fi
				;;
			*)
				[ -f "$d/$inc" ] ||
					echo "$f:$n: includes $inc, not a header of its folder"
				;;
			esac
		done < "$f"
	done
}

mkfolder() {	# mkfolder LIB NAME MAY-INCLUDE...
	local lib=$1 name=$2
	shift 2
	mkdir -p "$lib/$name"
	printf 'what %s holds\nMay include: %s\n' "$name" "$*" > "$lib/$name/README"
}

@test "layering: violations finds each kind of breach in a synthetic tree" {
	lib=$BATS_TEST_TMPDIR/lib
	mkfolder "$lib" base
	mkfolder "$lib" format base
	mkfolder "$lib" net base
	echo '#include "err.h"' > "$lib/base/err.h"
	touch "$lib/base/buf.h" "$lib/format/json.h" "$lib/net/route.h"
	run violations "$lib"
	assert_success
	assert_output ''

	printf '#include <stdio.h>\n#include "base/buf.h"\n#include "json.h"\n' > "$lib/format/canon.c"
	run violations "$lib"
	assert_output ''

	printf '\n#include "format/json.h"\n' > "$lib/base/up.c"		# upward
	printf '#include "format/json.h"\n' > "$lib/net/peer.c"		# a peer
	printf '#include "../cmd/proxy/proxy.h"\n' > "$lib/net/cmd.c"	# a command
	printf '#include "proxy/proxy.h"\n' > "$lib/net/cmd2.c"
	printf '#include "route.h"\n#include "buf.h"\n' > "$lib/net/elsewhere.c"
	printf '#include "format/canon.h"\n' > "$lib/format/self.c"
	printf '  #  include "base/nothere.h"\n' > "$lib/net/missing.c"
	touch "$lib/stray.c"
	run violations "$lib"
	assert_line "$lib/base/up.c:2: includes format/json.h: base may not include format"
	assert_line "$lib/net/peer.c:1: includes format/json.h: net may not include format"
	assert_line "$lib/net/cmd.c:1: includes ../cmd/proxy/proxy.h, not a header of lib/"
	assert_line "$lib/net/cmd2.c:1: includes proxy/proxy.h, not a header of lib/"
	assert_line "$lib/net/elsewhere.c:2: includes buf.h, not a header of its folder"
	assert_line "$lib/format/self.c:1: includes format/canon.h: a header of its own folder is \"canon.h\""
	assert_line "$lib/net/missing.c:1: includes base/nothere.h, which does not exist"
	assert_line "$lib/stray.c: outside a folder"
	[ "${#lines[@]}" -eq 8 ]

	rm "$lib"/base/up.c "$lib"/net/*.c "$lib"/format/self.c "$lib/stray.c"
	mkfolder "$lib" base format	# base may include format, which includes base
	run violations "$lib"
	assert_output "$lib: the folders' 'May include' lines make a loop"
	mkdir "$lib/new"
	run violations "$lib"
	assert_line "$lib/new: no README"
}

@test "layering: lib/ of this tree keeps it" {
	[ -f "$TOP/lib/base/err.h" ]
	run violations "$TOP/lib"
	assert_success
	assert_output ''
}

@test "layering: no command includes another command's file" {
	run grep -n '#[[:space:]]*include[[:space:]]*"\.\./' "$TOP"/cmd/*.c "$TOP"/cmd/*/*.[ch]
	assert_failure 1
	assert_output ''
}
