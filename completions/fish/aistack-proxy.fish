# fish completion for aistack-proxy
complete -c aistack-proxy -f
complete -c aistack-proxy -s v -l verbose -d 'report the address and upstream failures'
complete -c aistack-proxy -s c -l config -r -F -d 'read this configuration file'
complete -c aistack-proxy -s l -l listen -x -a '127.0.0.1:8888 [::1]:8888' -d 'listen address'
complete -c aistack-proxy -l rate -x -a '60/min 10/s 1000/h' -d 'requests a client may make'
complete -c aistack-proxy -l burst -x -d 'requests a client may make at once'
complete -c aistack-proxy -l dashboard -x -a '(__fish_complete_directories)' -d 'serve the dashboard from'
complete -c aistack-proxy -l access-log -r -F -d 'append one line a request to'
complete -c aistack-proxy -s h -l help -d 'show help'
complete -c aistack-proxy -l version -d 'show the version'
