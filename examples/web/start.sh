#!/bin/sh
# The page names the task that serves it: its container's hostname.
sed "s/@TASK@/$(hostname)/" /www/index.tmpl > /www/index.html
exec httpd -f -p "$PORT" -h /www
