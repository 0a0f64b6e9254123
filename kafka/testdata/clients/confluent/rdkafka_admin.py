"""librdkafka's admin API for consumer groups and records, through ctypes.

Debian's python3-confluent-kafka (1.7) wraps none of the group calls of
the librdkafka it runs on (2.0): ListConsumerGroups, DescribeConsumerGroups,
ListConsumerGroupOffsets, AlterConsumerGroupOffsets,
DeleteConsumerGroupOffsets, DeleteGroups and DeleteRecords, which later
confluent-kafka releases wrap as they are. compat.py calls them here, on a
client handle of their own. Each call returns ("ok", result),
("error", code name, message) for a request that failed as a whole, or
("timeout",).
"""

import ctypes as C

lib = C.CDLL("librdkafka.so.1")
P, S, I, Z = C.c_void_p, C.c_char_p, C.c_int, C.c_size_t
PP = C.POINTER(P)


def fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype, f.argtypes = restype, list(argtypes)
    return f


class TopicPartition(C.Structure):  # rd_kafka_topic_partition_t
    _fields_ = [("topic", S), ("partition", C.c_int32), ("offset", C.c_int64), ("metadata", P),
                ("metadata_size", Z), ("opaque", P), ("err", I), ("_private", P)]


class TopicPartitionList(C.Structure):  # rd_kafka_topic_partition_list_t
    _fields_ = [("cnt", I), ("size", I), ("elems", C.POINTER(TopicPartition))]


TPL = C.POINTER(TopicPartitionList)

version = fn("rd_kafka_version_str", S)
_conf_new = fn("rd_kafka_conf_new", P)
_conf_set = fn("rd_kafka_conf_set", I, P, S, S, S, Z)
_new = fn("rd_kafka_new", P, I, P, S, Z)
_destroy = fn("rd_kafka_destroy", None, P)
_queue_new = fn("rd_kafka_queue_new", P, P)
_queue_destroy = fn("rd_kafka_queue_destroy", None, P)
_queue_poll = fn("rd_kafka_queue_poll", P, P, I)
_event_destroy = fn("rd_kafka_event_destroy", None, P)
_event_error = fn("rd_kafka_event_error", I, P)
_event_error_string = fn("rd_kafka_event_error_string", S, P)
_err2name = fn("rd_kafka_err2name", S, I)
_error_code = fn("rd_kafka_error_code", I, P)
_error_string = fn("rd_kafka_error_string", S, P)
_options_new = fn("rd_kafka_AdminOptions_new", P, P, I)
_options_timeout = fn("rd_kafka_AdminOptions_set_request_timeout", I, P, I, S, Z)
_options_destroy = fn("rd_kafka_AdminOptions_destroy", None, P)
_tpl_new = fn("rd_kafka_topic_partition_list_new", TPL, I)
_tpl_add = fn("rd_kafka_topic_partition_list_add", C.POINTER(TopicPartition), TPL, S, C.c_int32)
_tpl_destroy = fn("rd_kafka_topic_partition_list_destroy", None, TPL)
_group_name = fn("rd_kafka_group_result_name", S, P)
_group_error = fn("rd_kafka_group_result_error", P, P)
_group_partitions = fn("rd_kafka_group_result_partitions", P, P)
_state_name = fn("rd_kafka_consumer_group_state_name", S, I)


def _str(s):
    return None if s is None else s.decode()


def _partition_list(items):
    """[(topic, partition, offset)] as a new partition list."""
    tpl = _tpl_new(len(items))
    for topic, partition, offset in items:
        _tpl_add(tpl, topic.encode(), partition).contents.offset = offset
    return tpl


def _partitions(ptr):
    """A partition list as [(topic, partition, offset, error name)]."""
    if not ptr:
        return None
    tpl = C.cast(ptr, TPL).contents
    return [(_str(e.topic), e.partition, e.offset, _str(_err2name(e.err)))
            for e in (tpl.elems[i] for i in range(tpl.cnt))]


def _error(err):
    """An rd_kafka_error_t as (code name, message), or None."""
    return None if not err else (_str(_err2name(_error_code(err))), _str(_error_string(err)))


def _array(getter, result):
    n = Z()
    arr = getter(result, C.byref(n))
    return [arr[i] for i in range(n.value)]


class Admin:
    def __init__(self, broker):
        conf = _conf_new()
        errstr = C.create_string_buffer(512)
        for k, v in [("bootstrap.servers", broker), ("client.id", "confluent-compat-admin")]:
            if _conf_set(conf, k.encode(), v.encode(), errstr, 512) != 0:
                raise RuntimeError(errstr.value.decode())
        self.rk = _new(0, conf, errstr, 512)  # a producer handle, as AdminClient makes
        if not self.rk:
            raise RuntimeError(errstr.value.decode())
        self.queue = _queue_new(self.rk)

    def close(self):
        _queue_destroy(self.queue)
        _destroy(self.rk)

    def _call(self, start, read):
        """start(rk, options, queue) begins the call; read(event) reads
        its result."""
        options = _options_new(self.rk, 0)  # RD_KAFKA_ADMIN_OP_ANY
        _options_timeout(options, 20000, None, 0)
        start(self.rk, options, self.queue)
        _options_destroy(options)
        ev = _queue_poll(self.queue, 60000)
        if not ev:
            return ("timeout",)
        try:
            code = _event_error(ev)
            if code:
                return ("error", _str(_err2name(code)), _str(_event_error_string(ev)))
            return ("ok", read(ev))
        finally:
            _event_destroy(ev)

    def _one(self, api, new, destroy, results):
        """A call of one request object (new, freed with destroy) whose
        results are group results (each a group, its error and its
        partitions)."""
        start = fn("rd_kafka_" + api, None, P, PP, Z, P, P)
        event_result = fn("rd_kafka_event_" + api + "_result", P, P)
        getter = fn(results, PP, P, C.POINTER(Z))
        arr = (P * 1)(new)
        try:
            return self._call(lambda rk, o, q: start(rk, arr, 1, o, q),
                              lambda ev: [{"group": _str(_group_name(g)), "error": _error(_group_error(g)),
                                           "partitions": _partitions(_group_partitions(g))}
                                          for g in _array(getter, event_result(ev))])
        finally:
            fn(destroy, None, P)(new)

    def list_groups(self):
        """([(group, simple, state)], [errors])"""
        start = fn("rd_kafka_ListConsumerGroups", None, P, P, P)
        event_result = fn("rd_kafka_event_ListConsumerGroups_result", P, P)
        valid = fn("rd_kafka_ListConsumerGroups_result_valid", PP, P, C.POINTER(Z))
        errors = fn("rd_kafka_ListConsumerGroups_result_errors", PP, P, C.POINTER(Z))
        group_id = fn("rd_kafka_ConsumerGroupListing_group_id", S, P)
        simple = fn("rd_kafka_ConsumerGroupListing_is_simple_consumer_group", I, P)
        state = fn("rd_kafka_ConsumerGroupListing_state", I, P)

        def read(ev):
            res = event_result(ev)
            return ([(_str(group_id(g)), bool(simple(g)), _str(_state_name(state(g)))) for g in _array(valid, res)],
                    [_error(e) for e in _array(errors, res)])
        return self._call(start, read)

    def describe_groups(self, groups):
        start = fn("rd_kafka_DescribeConsumerGroups", None, P, C.POINTER(S), Z, P, P)
        event_result = fn("rd_kafka_event_DescribeConsumerGroups_result", P, P)
        results = fn("rd_kafka_DescribeConsumerGroups_result_groups", PP, P, C.POINTER(Z))
        d = "rd_kafka_ConsumerGroupDescription_"
        group_id, error = fn(d + "group_id", S, P), fn(d + "error", P, P)
        simple, assignor = fn(d + "is_simple_consumer_group", I, P), fn(d + "partition_assignor", S, P)
        state, coordinator = fn(d + "state", I, P), fn(d + "coordinator", P, P)
        member_count, member = fn(d + "member_count", Z, P), fn(d + "member", P, P, Z)
        node_id, node_host, node_port = fn("rd_kafka_Node_id", I, P), fn("rd_kafka_Node_host", S, P), fn("rd_kafka_Node_port", C.c_uint16, P)
        m = "rd_kafka_MemberDescription_"
        client_id, consumer_id, host = fn(m + "client_id", S, P), fn(m + "consumer_id", S, P), fn(m + "host", S, P)
        assignment = fn(m + "assignment", P, P)
        assigned = fn("rd_kafka_MemberAssignment_partitions", P, P)
        names = (S * len(groups))(*[g.encode() for g in groups])

        def read(ev):
            out = []
            for g in _array(results, event_result(ev)):
                c = coordinator(g)
                members = [member(g, i) for i in range(member_count(g))]
                out.append({"group": _str(group_id(g)), "error": _error(error(g)), "simple": bool(simple(g)),
                            "assignor": _str(assignor(g)), "state": _str(_state_name(state(g))),
                            "coordinator": None if not c else [node_id(c), _str(node_host(c)), node_port(c)],
                            "members": [{"client_id": _str(client_id(mm)), "member_id": _str(consumer_id(mm)),
                                         "host": _str(host(mm)), "assignment": _partitions(assigned(assignment(mm)))}
                                        for mm in members]})
            return out
        return self._call(lambda rk, o, q: start(rk, names, len(groups), o, q), read)

    def list_offsets(self, group, partitions=None):
        """partitions: [(topic, partition)], or None for every one."""
        tpl = _partition_list([(t, p, -1) for t, p in partitions]) if partitions is not None else TPL()
        new = fn("rd_kafka_ListConsumerGroupOffsets_new", P, S, TPL)(group.encode(), tpl)
        if partitions is not None:
            _tpl_destroy(tpl)
        return self._one("ListConsumerGroupOffsets", new, "rd_kafka_ListConsumerGroupOffsets_destroy",
                         "rd_kafka_ListConsumerGroupOffsets_result_groups")

    def _with_offsets(self, api, group, offsets):
        tpl = _partition_list(offsets)
        new = fn("rd_kafka_" + api + "_new", P, S, TPL)(group.encode(), tpl)
        _tpl_destroy(tpl)
        return self._one(api, new, "rd_kafka_" + api + "_destroy", "rd_kafka_" + api + "_result_groups")

    def alter_offsets(self, group, offsets):
        """offsets: [(topic, partition, offset)]"""
        return self._with_offsets("AlterConsumerGroupOffsets", group, offsets)

    def delete_offsets(self, group, partitions):
        return self._with_offsets("DeleteConsumerGroupOffsets", group, [(t, p, -1) for t, p in partitions])

    def delete_group(self, group):
        new = fn("rd_kafka_DeleteGroup_new", P, S)(group.encode())
        return self._one("DeleteGroups", new, "rd_kafka_DeleteGroup_destroy", "rd_kafka_DeleteGroups_result_groups")

    def delete_records(self, before):
        """before: [(topic, partition, offset)]; the result is the
        partitions with each one's low watermark, or its error."""
        tpl = _partition_list(before)
        new = fn("rd_kafka_DeleteRecords_new", P, TPL)(tpl)
        _tpl_destroy(tpl)
        start = fn("rd_kafka_DeleteRecords", None, P, PP, Z, P, P)
        event_result = fn("rd_kafka_event_DeleteRecords_result", P, P)
        offsets = fn("rd_kafka_DeleteRecords_result_offsets", P, P)
        arr = (P * 1)(new)
        try:
            return self._call(lambda rk, o, q: start(rk, arr, 1, o, q), lambda ev: _partitions(offsets(event_result(ev))))
        finally:
            fn("rd_kafka_DeleteRecords_destroy", None, P)(new)
