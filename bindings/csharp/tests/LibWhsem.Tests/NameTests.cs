// SPDX-License-Identifier: MIT
using System.Text;
using LibWhsem.Interop;
using Medallion.Threading.WaitHandles;
using Xunit;

namespace LibWhsem.Tests;

public class NameTests
{
    // Names the original produces (also in the SPEC): input, finalized name.
    public static TheoryData<string, string> PublishedVectors() => new()
    {
        { "abc", @"Global\abc" },
        { "", @"Global\EMPTYz4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==" },
        { "\\", @"Global\_CgzRFsLFf7El/ZraEx9sqWRYeplYohSBSmI9sYIe1c4y2u7ECFoU4x2QCjV7HiVJMZsuDMLIz7r8akpKr+viAw==" },
        { new string('a', 253), @"Global\" + new string('a', 253) },
        { new string('\\', 253), @"Global\" + new string('_', 165) + "Y7DJXlpJeJjeX5XAOWV+ka/3ONBj5dHhKWcSH4pd5AC9YHFm+l1gBArGpBSBn3WcX00ArcDtKw7g24kJaHLifQ==" },
        { new string('x', 254), @"Global\" + new string('x', 165) + "srCnXZ1XHiT//dOSBfAU0iC4Gtnlr0dQACBUK8Ev2OdRYJ9jcvbiqVCv/rjyPemTW9AvOonkdr0B2bG04gmeYA==" },
    };

    [Theory]
    [MemberData(nameof(PublishedVectors))]
    public void NamesMatchTheOriginalsVectors(string given, string finalized)
    {
        Assert.Equal(finalized, new WaitHandleDistributedSemaphore(given, 1).Name);
        Assert.Equal(finalized, new EventWaitHandleDistributedLock(given).Name);
        Assert.True(finalized.Length <= 260);
    }

    [Fact]
    public void ProviderAndExactNamesAgree()
    {
        var provider = new WaitHandleDistributedSynchronizationProvider();
        Assert.Equal(@"Global\abc", provider.CreateSemaphore("abc", 2).Name);
        Assert.Equal(2, provider.CreateSemaphore("abc", 2).MaxCount);
        Assert.Equal(@"Global\abc", new WaitHandleDistributedSemaphore(@"Global\abc", 1, exactName: true).Name);
        // A prefixed name keeps its prefix and is finalized after it.
        Assert.Equal(@"Global\abc", new WaitHandleDistributedSemaphore(@"Global\abc", 1).Name);
        Assert.StartsWith(@"Global\a_b", new WaitHandleDistributedSemaphore(@"Global\a\b", 1).Name);
        Assert.Equal(new WaitHandleDistributedSemaphore("", 1).Name, new WaitHandleDistributedSemaphore(@"Global\", 1).Name);
    }

    public static TheoryData<string> Names() => new()
    {
        "abc", "", "\\", @"Global\", @"Global\x\y", "global\\x", " \t", "/a/b/c", "\r\n", "é€😀",
        new string('a', 253), new string('a', 254), new string('\\', 1000), new string('a', 164) + "😀" + new string('b', 10),
        string.Concat(Enumerable.Repeat("😀", 126)), string.Concat(Enumerable.Repeat("😀", 127)),
        new string('a', 164) + "😀" + new string('b', 100),
    };

    // The C library finalizes names for every other binding: both must name
    // the same semaphore. (For a surrogate pair split by the cut, .NET keeps
    // the lone high surrogate, which becomes U+FFFD in UTF-8, exactly what
    // the C library writes.)
    [Theory]
    [MemberData(nameof(Names))]
    public unsafe void NamesAgreeWithTheCLibrary(string name)
    {
        WhsemLibrary.EnsureLoaded();
        var managed = new WaitHandleDistributedSemaphore(name, 1).Name;
        var input = Encoding.UTF8.GetBytes(name + "\0");
        var buffer = new byte[1024];
        nuint length;
        fixed (byte* i = input)
        fixed (byte* b = buffer)
        {
            Assert.Equal(Native.WHSEM_OK, Native.whsem_safe_name(i, b, (nuint)buffer.Length, &length));
        }
        var native = buffer.AsSpan(0, (int)length - 1).ToArray();
        Assert.Equal(native, Encoding.UTF8.GetBytes(managed));
    }

    [Fact]
    public void CutThroughASurrogatePairKeepsTheHighSurrogateLikeTheOriginal()
    {
        var name = new WaitHandleDistributedSemaphore(new string('a', 164) + "😀" + new string('b', 100), 1).Name;
        Assert.Equal('\uD83D', name[7 + 164]);
        Assert.Equal(7 + 165 + 88, name.Length);
    }

    [Fact]
    public void SafeNamesAreCaseSensitive()
    {
        var longName1 = new string('a', 1000);
        var longName2 = new string('a', longName1.Length - 1) + "A";
        Assert.NotEqual(new WaitHandleDistributedSemaphore(longName1, 1).Name, new WaitHandleDistributedSemaphore(longName2, 1).Name);
    }

    [Fact]
    public void NamesDifferingOnlyInCaseAreDifferentSemaphores()
    {
        using var n = new UniqueName("case");
        var lower = n.Track(n.Name + "_a");
        var upper = n.Track(n.Name + "_A");
        using var held = new WaitHandleDistributedSemaphore(lower, 1).Acquire(TimeSpan.FromSeconds(20));
        using var other = new WaitHandleDistributedSemaphore(upper, 1).TryAcquire();
        Assert.NotNull(other);
    }

    [Fact]
    public void NullNamesThrowArgumentNullException()
    {
        Assert.Throws<ArgumentNullException>(() => new WaitHandleDistributedSemaphore(null!, 1));
        Assert.Throws<ArgumentNullException>(() => new WaitHandleDistributedSemaphore(null!, 1, exactName: true));
    }

    [Theory]
    [InlineData("no-prefix")]
    [InlineData(@"GLOBAL\upper-case-prefix")]
    [InlineData(@"global\lower-case-prefix")]
    [InlineData(@"Local\other-namespace")]
    [InlineData(@"Global\")]
    [InlineData(@"Global\two\levels")]
    public void InvalidExactNamesThrowFormatException(string name)
    {
        Assert.Throws<FormatException>(() => new WaitHandleDistributedSemaphore(name, 1, exactName: true));
        // The same name without exactName is always usable.
        using var n = new UniqueName("bad");
        var safe = new WaitHandleDistributedSemaphore(name + n.Name, 1);
        n.Track(name + n.Name);
        safe.Acquire(TimeSpan.FromSeconds(20)).Dispose();
    }

    [Theory]
    [InlineData("\ttab and space")]
    [InlineData("dir/sub/file")]
    [InlineData("line\nbreak")]
    [InlineData("..")]
    [InlineData("%2F..")]
    [InlineData("#!:*?<>|")]
    public void UnusualExactNamesWork(string name)
    {
        using var n = new UniqueName("odd");
        var exact = n.Track(@"Global\" + n.Name + name);
        new WaitHandleDistributedSemaphore(exact, 1, TimeSpan.FromSeconds(.3), exactName: true).Acquire(TimeSpan.FromSeconds(20)).Dispose();
    }

    [Fact]
    public void MaxLengthExactNamesWorkAndLongerOnesDoNot()
    {
        using var n = new UniqueName("max");
        var prefix = @"Global\" + n.Name;
        var maxLength = n.Track(prefix + new string('a', 260 - prefix.Length));
        Assert.Equal(260, maxLength.Length);
        var semaphore = new WaitHandleDistributedSemaphore(maxLength, 1, exactName: true);
        Assert.Equal(maxLength, semaphore.Name);
        semaphore.Acquire(TimeSpan.FromSeconds(20)).Dispose();
        Assert.Throws<FormatException>(() => new WaitHandleDistributedSemaphore(maxLength + "a", 1, exactName: true));
    }

    [Fact]
    public void LongAndUnicodeNamesWork()
    {
        using var n = new UniqueName("long");
        foreach (var name in new[] { n.Name + new string('o', 1000), n.Name + "é€😀", n.Name + new string('\\', 300), n.Name + string.Concat(Enumerable.Repeat("😀", 200)) })
        {
            n.Track(name);
            var a = new WaitHandleDistributedSemaphore(name, 1);
            using var held = a.Acquire(TimeSpan.FromSeconds(20));
            Assert.Null(new WaitHandleDistributedSemaphore(name, 1).TryAcquire());
        }
    }

    [Fact]
    public void NamesWithNulAreRejectedClearly()
    {
        var e = Assert.Throws<ArgumentException>(() => new WaitHandleDistributedSemaphore("a\0b", 1));
        Assert.Equal("name", e.ParamName);
        Assert.Contains("NUL", e.Message);
        Assert.Throws<ArgumentException>(() => new WaitHandleDistributedSemaphore("Global\\a\0b", 1, exactName: true));
        // A NUL beyond the part of a long name that is kept is hashed away.
        var name = new string('a', 200) + "\0" + new string('b', 100);
        Assert.DoesNotContain('\0', new WaitHandleDistributedSemaphore(name, 1).Name);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    public void MaxCountBelowOneIsOutOfRange(int maxCount)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new WaitHandleDistributedSemaphore("x", maxCount));
        Assert.Equal("maxCount", e.ParamName);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(int.MaxValue)]
    public void MaxCountIsReported(int maxCount)
    {
        Assert.Equal(maxCount, new WaitHandleDistributedSemaphore("reported", maxCount).MaxCount);
        Assert.Equal(maxCount, new WaitHandleDistributedSynchronizationProvider().CreateSemaphore("reported", maxCount).MaxCount);
    }

    [Fact]
    public void AbandonmentCheckCadenceIsValidated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new WaitHandleDistributedSemaphore("x", 1, TimeSpan.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WaitHandleDistributedSemaphore("x", 1, TimeSpan.FromSeconds(-2)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WaitHandleDistributedSemaphore("x", 1, TimeSpan.FromMilliseconds(0.5)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WaitHandleDistributedSemaphore("x", 1, TimeSpan.FromDays(30)));
        _ = new WaitHandleDistributedSemaphore("x", 1, Timeout.InfiniteTimeSpan);
        _ = new WaitHandleDistributedSemaphore("x", 1, TimeSpan.FromMilliseconds(1));
        _ = new WaitHandleDistributedSemaphore("x", 1, TimeSpan.FromMilliseconds(int.MaxValue));
    }

    [Fact]
    public void AnInfiniteAbandonmentCheckCadenceStillAcquires()
    {
        using var n = new UniqueName("cadence");
        var s = new WaitHandleDistributedSemaphore(n.Name, 2, Timeout.InfiniteTimeSpan);
        using var a = s.Acquire(TimeSpan.FromSeconds(20));
        using var b = s.Acquire(TimeSpan.FromSeconds(20));
        Assert.Null(s.TryAcquire());
    }
}
