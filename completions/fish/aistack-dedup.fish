# fish completion for aistack-dedup
function __aistack_dedup_dir
    if test -n "$AISTACK_STATE_DIR"
        echo $AISTACK_STATE_DIR
    else if test -n "$STATE_DIRECTORY"
        string split -m1 : $STATE_DIRECTORY | head -n 1
    else if test -n "$XDG_STATE_HOME"
        echo $XDG_STATE_HOME/aistack
    else
        echo $HOME/.local/state/aistack
    end
end

function __aistack_dedup_states
    for s in (__aistack_dedup_dir)/dedup/[a-z0-9]*
        basename $s
    end
end

function __aistack_dedup_streams
    for s in (__aistack_dedup_dir)/streams/*/
        basename $s
    end
end

complete -c aistack-dedup -f
complete -c aistack-dedup -s v -l verbose -d 'report counts on standard error'
complete -c aistack-dedup -s k -l key -x -d 'key on the values at jq-style paths'
complete -c aistack-dedup -l normalize -x -a 'trim lower space trim,lower trim,lower,space' -d 'normalize string values'
complete -c aistack-dedup -l exact -d 'key on the raw line'
complete -c aistack-dedup -s s -l state -r -a '(__aistack_dedup_states)' -d 'remember keys across runs'
complete -c aistack-dedup -s a -l against -r -a '(__aistack_dedup_streams)' -d 'exact mode against the sink stream'
complete -c aistack-dedup -l stats -r -F -d 'write statistics as JSON'
complete -c aistack-dedup -l dups -r -F -d 'write the dropped records'
complete -c aistack-dedup -l near -x -d 'also drop near duplicates (0 to 1)'
complete -c aistack-dedup -l on-bad -x -a 'fail dups pass' -d 'a line that is not a JSON object'
complete -c aistack-dedup -s h -l help -d 'show help'
complete -c aistack-dedup -l version -d 'show the version'
