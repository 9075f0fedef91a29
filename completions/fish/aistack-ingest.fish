# fish completion for aistack-ingest
function __aistack_streams
    set -l dir $AISTACK_STATE_DIR
    test -n "$dir"; or set dir $STATE_DIRECTORY
    test -n "$dir"; or begin
        set -q XDG_STATE_HOME; and set dir $XDG_STATE_HOME/aistack; or set dir $HOME/.local/state/aistack
    end
    for s in $dir/streams/*
        basename $s
    end
end

complete -c aistack-ingest -s v -l verbose -d 'report counts on standard error'
complete -c aistack-ingest -l max-record -x -d 'longest record accepted'
complete -c aistack-ingest -l max-backlog -x -d 'pause while the backlog is above'
complete -c aistack-ingest -l on-full -x -a 'block fail' -d 'when over the backlog'
complete -c aistack-ingest -l sync -x -a 'batch always none' -d 'when to fdatasync'
complete -c aistack-ingest -l rejects -x -a '(__aistack_streams)' -d 'stream for invalid lines'
complete -c aistack-ingest -l stats -r -F -d 'write statistics as JSON'
complete -c aistack-ingest -l table -x -d 'PostgreSQL table'
complete -c aistack-ingest -s k -l key -x -d 'PostgreSQL: digest of the key at jq-style paths'
complete -c aistack-ingest -l normalize -x -a 'trim lower space trim,lower trim,lower,space' -d 'PostgreSQL: normalize the key\'s string values'
complete -c aistack-ingest -l follow -r -F -d 'tail a file written by other programs'
complete -c aistack-ingest -l lock -x -a 'flock fcntl none' -d 'the lock the writers of the followed file take'
complete -c aistack-ingest -l on-loss -x -a 'warn fail' -d 'when unread data of the followed file is gone'
complete -c aistack-ingest -s h -l help -d 'show help'
complete -c aistack-ingest -l version -d 'show the version'
complete -c aistack-ingest -a '(__aistack_streams)' -d stream
