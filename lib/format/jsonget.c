#include <jansson.h>

#include "jsonget.h"

int
jsonget_u64(const json_t *o, const char *key, uint64_t *v)
{
	const json_t *j = json_object_get(o, key);

	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return -1;
	*v = (uint64_t)json_integer_value(j);
	return 0;
}

int
jsonget_u64_opt(const json_t *o, const char *key, uint64_t *v)
{
	const json_t *j = json_object_get(o, key);

	if (j == NULL || json_is_null(j))
		return 0;
	return jsonget_u64(o, key, v);
}
